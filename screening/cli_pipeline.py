"""The ``run``, ``rank`` and ``demo`` commands, registered on the ``screening`` Typer app.

Thin wrappers: the work is done by :mod:`pipelines` (imported inside each command, since ``screening``
never imports ``pipelines`` at module level). Exit status: 0 when every partition was written (failed
rows included, they are reported), 1 when some partitions could not be completed, 2 for bad settings
or input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from screening.cli import app


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Argument(help="YAML file of run settings (options override it).")
    ] = None,
    structures: Annotated[
        Path | None, typer.Option(help="Structures dataset (from `screening ingest`).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (results/, run.json).")] = None,
    model: Annotated[str | None, typer.Option(help="Energy model, e.g. sevennet-0, chgnet-0.3.0.")] = None,
    disorder: Annotated[
        str | None, typer.Option(help="Disorder strategy for partially occupied sites.")
    ] = None,
    relax: Annotated[bool | None, typer.Option("--relax/--no-relax", help="Relax before the energy.")] = None,
    mobile_ion: Annotated[str | None, typer.Option(help="Mobile ion, e.g. Li, Na.")] = None,
    temperature_K: Annotated[
        float | None, typer.Option("--temperature-K", help="Temperature of sigma, K.")
    ] = None,
    scheduler: Annotated[str | None, typer.Option(help="Existing scheduler, tcp://host:8786.")] = None,
    cluster: Annotated[str | None, typer.Option(help="auto, local, cuda or slurm.")] = None,
    workers: Annotated[int | None, typer.Option(help="Workers (default: one per core / GPU).")] = None,
    partition_size: Annotated[int | None, typer.Option(help="Structures per partition.")] = None,
    device: Annotated[str | None, typer.Option(help="torch device of the model (cpu, cuda).")] = None,
    retries: Annotated[int | None, typer.Option(help="Retries of a partition whose worker died.")] = None,
    references: Annotated[Path | None, typer.Option(help="Hull reference entries (Parquet).")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress")] = None,
) -> None:
    """Screen a structures table on Dask: stability, conductivity, results per partition (resumable)."""
    import pydantic

    from pipelines.cluster import ClusterError
    from pipelines.run import RunDirError, run_screening
    from pipelines.settings import RunSettings

    overrides = {
        "structures": structures,
        "out": out,
        "model": model,
        "disorder": disorder,
        "relax": relax,
        "mobile_ion": mobile_ion,
        "temperature_K": temperature_K,
        "scheduler": scheduler,
        "cluster": cluster,
        "workers": workers,
        "partition_size": partition_size,
        "device": device,
        "retries": retries,
        "references": references,
        "progress": progress,
    }
    try:
        settings = RunSettings.from_yaml(config, **overrides)
    except (pydantic.ValidationError, ValueError, OSError) as exc:
        raise _fail(f"invalid run settings: {exc}") from exc
    try:
        summary = run_screening(settings)
    except (ClusterError, RunDirError, FileNotFoundError, ValueError) as exc:
        raise _fail(f"run failed: {exc}") from exc
    typer.echo(summary.format())
    if not summary.complete:
        raise typer.Exit(1)


@app.command()
def rank(
    run_dir: Annotated[Path, typer.Argument(help="Run directory written by `screening run`.")],
    max_e_above_hull_eV: Annotated[float, typer.Option("--max-e-above-hull-eV", help="eV/atom")] = 0.05,
    min_p_stable: Annotated[
        float, typer.Option(help="Least probability of being within the threshold.")
    ] = 0.5,
    top: Annotated[int, typer.Option(help="Candidates to print.")] = 20,
    weights: Annotated[str | None, typer.Option(help="Score weights, e.g. sigma=1,stability=2.")] = None,
    mobile_ion: Annotated[str | None, typer.Option(help="Default: the run's mobile ion.")] = None,
    allow_incomplete_hull: Annotated[
        bool,
        typer.Option(help="Also rank candidates whose hull lacks metal-anion phases (E_hull a lower bound)."),
    ] = False,
) -> None:
    """Filter, score and rank a run's results; write ranked.parquet and print the top candidates."""
    from pipelines.rank import RANKED_NAME, rank_run
    from screening.ranking import format_set_aside, format_top

    try:
        ranked, aside = rank_run(
            run_dir,
            max_e_above_hull_eV=max_e_above_hull_eV,
            min_p_stable=min_p_stable,
            weights=weights,
            mobile_ion=mobile_ion,
            allow_incomplete_hull=allow_incomplete_hull,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(f"rank failed: {exc}") from exc
    typer.echo(format_top(ranked, top))
    if not aside.empty:
        typer.echo(format_set_aside(aside))
    typer.echo(f"{len(ranked)} candidates -> {run_dir / RANKED_NAME}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the structures and the run.")] = Path(
        "screening-demo"
    ),
    workers: Annotated[int | None, typer.Option(help="Local workers (default: one per core).")] = None,
    model: Annotated[str, typer.Option(help="Energy model.")] = "sevennet-0",
    notebook: Annotated[bool, typer.Option("--notebook/--no-notebook", help="Execute the notebook.")] = True,
) -> None:
    """The bundled structures, screened on a local cluster and ranked; shows where the tables are."""
    from pipelines.demo import run_demo

    result = run_demo(out, workers=workers, model=model, execute_notebook=notebook, echo=typer.echo)
    if not result.summary.complete:
        raise typer.Exit(1)
