"""Execute the ranking notebook headless on a run directory (for the demo and the tests)."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.rundir import RunDir
from screening.resources import package_data

NOTEBOOK_NAME = "rank_candidates"


def notebook_source(name: str = NOTEBOOK_NAME) -> Path:
    """The percent-format notebook ``<name>.py`` shipped as package data (``screening/data/notebooks``;
    ``notebooks/<name>.py`` of the source tree links to it).

    Raises:
        FileNotFoundError: there is no such notebook.
    """
    return package_data("notebooks", f"{name}.py")


def execute_notebook(
    run_dir: str | os.PathLike,
    out_path: str | os.PathLike | None = None,
    *,
    name: str = NOTEBOOK_NAME,
    timeout_s: int = 300,
) -> Path:
    """Run the notebook on ``run_dir`` (through ``SCREENING_RUN_DIR``) and save it with its outputs.

    Args:
        run_dir: a run directory (``run.json``, ``results/``, ideally ``ranked.parquet``).
        out_path: where the executed ``.ipynb`` goes; default ``RUN_DIR/<name>.ipynb``.
        name: a notebook of :func:`notebook_source`.
        timeout_s: limit per cell, in s.

    Returns:
        The executed notebook's path.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised (the message holds the traceback).
        ImportError: jupytext / nbclient / ipykernel are not installed (extra ``notebooks``).
    """
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    run = RunDir(run_dir)
    run_dir = run.path
    out_path = Path(out_path) if out_path is not None else run.notebook_path(name)
    notebook = jupytext.read(notebook_source(name))
    previous = os.environ.get("SCREENING_RUN_DIR")
    os.environ["SCREENING_RUN_DIR"] = str(run_dir)  # the kernel inherits this process's environment
    try:
        client = NotebookClient(
            notebook, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(run_dir)}}
        )
        client.execute()
    finally:
        if previous is None:
            os.environ.pop("SCREENING_RUN_DIR", None)
        else:
            os.environ["SCREENING_RUN_DIR"] = previous
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out_path)
    return out_path
