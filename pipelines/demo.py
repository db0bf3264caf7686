"""``screening demo``: the bundled set, screened on a local cluster, ranked, with the notebook executed."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.rank import format_ranking, rank_run
from pipelines.run import RunSummary, run_screening
from pipelines.rundir import RunDir
from pipelines.settings import RunSettings


@dataclass
class DemoResult:
    """Where the demo put things, and what it found."""

    structures_dir: Path
    run_dir: Path
    summary: RunSummary
    ranked: pd.DataFrame
    notebook: Path | None


def run_demo(
    out_dir: str | os.PathLike = "screening-demo",
    *,
    workers: int | None = None,
    model: str | None = None,
    partition_size: int = 2,
    top: int = 20,
    execute_notebook: bool = True,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Ingest the bundled structures, screen them on a local cluster, rank, and report.

    Rerunning it on the same ``out_dir`` resumes (partitions already screened are skipped).

    Args:
        out_dir: folder for ``structures/`` and the run directory ``run/``.
        workers: local worker processes (default: one per core).
        model: energy model name (None: the default of ``ScienceConfig``).
        partition_size: structures per partition.
        top: candidates to print.
        execute_notebook: also execute the ranking notebook into ``run/rank_candidates.ipynb``.
        progress: show a progress bar.
        echo: where messages go.
    """
    from screening.io import write_dataset
    from screening.sources.bundled import iter_bundled_rows

    out_dir = Path(out_dir).resolve()
    structures_dir = out_dir / "structures"
    rows = list(iter_bundled_rows())
    write_dataset(rows, structures_dir, source="bundled")
    echo(f"bundled set: {len(rows)} structures -> {structures_dir}")

    settings = RunSettings.load(
        structures=structures_dir,
        out=out_dir / "run",
        model=model,
        cluster="local",
        workers=workers,
        partition_size=partition_size,
        progress=progress,
    )
    summary = run_screening(settings)
    echo(summary.format())
    ranking = rank_run(settings.out)
    echo("\n" + format_ranking(ranking, top))

    notebook = None
    if execute_notebook:
        try:
            from pipelines.notebook import execute_notebook as run_notebook

            notebook = run_notebook(settings.out)
        except (ImportError, FileNotFoundError) as exc:
            echo(f"(notebook not executed: {exc})")
    run = RunDir(settings.out)
    echo(
        "\ntables: "
        f"{run.results_dir} (all structures), {run.ranked_path} (ranked), {run.manifest_path} (manifest)"
    )
    if notebook is not None:
        echo(f"notebook: {notebook} (executed; figures in {run.figures_dir})")
    echo(f"to explore: jupyter lab notebooks/rank_candidates.ipynb  (with SCREENING_RUN_DIR={settings.out})")
    return DemoResult(structures_dir, settings.out, summary, ranking.ranked, notebook)
