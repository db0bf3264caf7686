"""The ranking notebook, executed headless on a small real run: no error, its figures made."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
from pipeline_inputs import write_structures

from pipelines.notebook import execute_notebook, notebook_source
from pipelines.rank import rank_run
from pipelines.run import run_screening
from pipelines.settings import RunSettings

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


def test_paired_ipynb_matches_the_percent_source():
    source = jupytext.read(notebook_source())
    paired = jupytext.read(NOTEBOOKS / "rank_candidates.ipynb")
    assert [(c.cell_type, c.source) for c in paired.cells] == [(c.cell_type, c.source) for c in source.cells]
    assert any("parameters" in c.metadata.get("tags", []) for c in source.cells)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_notebook_runs_on_a_small_run_and_draws_its_figures(tmp_path):
    structures = write_structures(tmp_path / "structures")
    run_dir = tmp_path / "run"
    settings = RunSettings(
        structures=structures,
        out=run_dir,
        n_samples=2,
        partition_size=8,
        workers=1,
        cluster="local",
        device="cpu",
        progress=False,
    )
    assert run_screening(settings).complete
    ranked = rank_run(run_dir, max_e_above_hull_eV=0.1, min_p_superionic=0.0).ranked  # binary salts
    assert len(ranked) >= 2

    executed = execute_notebook(run_dir, tmp_path / "executed.ipynb")  # raises on any cell error
    notebook = nbformat.read(executed, as_version=4)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 5  # Pareto plot, windows, distributions, periodic table, attribution
    tables = [o for o in outputs if "text/html" in o.get("data", {})]
    assert any(ranked["id"].iloc[0] in t["data"]["text/html"] for t in tables)  # the top-N table
    assert any("complete hull" in t["data"]["text/html"] for t in tables)  # the funnel table
    for name in ("pareto.png", "window.png", "distributions.png", "periodic_table.png", "attribution.png"):
        figure = run_dir / "figures" / name
        assert figure.exists() and figure.stat().st_size > 10_000, name
