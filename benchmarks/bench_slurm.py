"""``--cluster slurm`` on a real single-node SLURM against a LocalCluster run of the same structures: the
time from submitting the jobs to the first Dask worker, the wall time of each run, and whether the results
agree.

    nice .venv/bin/python benchmarks/bench_slurm.py --write      # as root

Starts munge, slurmctld and slurmd on loopback (``tests/slurm_node.py``; needs ``slurm-wlm`` and ``munge``
and root), screens the smallest bundled Li structures with 2 jobs of 1 core each, then the same with a
LocalCluster of 2 workers, and stops the daemons.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "tests"))
sys.path.insert(0, str(_REPO / "benchmarks"))

from report import code_revision, publish  # noqa: E402
from slurm_node import missing_reason, start_slurm  # noqa: E402

SECTION_TITLE = "## SLURM: a real single-node cluster against a local one (issue 15)"
N_STRUCTURES = 12


def _structures(folder: Path) -> Path:
    from screening.io import write_dataset
    from screening.schema import Col
    from screening.sources.bundled import iter_bundled_rows

    rows = [r for r in iter_bundled_rows() if r[Col.STATUS] == "ok" and "Li" in r[Col.ELEMENTS]]
    rows = sorted(rows, key=lambda r: (r[Col.NSITES], r[Col.ID]))[:N_STRUCTURES]
    return write_dataset(rows, folder, source="bundled")


def _run(settings) -> tuple[float, dict]:
    from pipelines.run import run_screening
    from pipelines.rundir import RunDir

    start = time.perf_counter()
    summary = run_screening(settings)
    wall_s = time.perf_counter() - start
    if not summary.complete:
        raise RuntimeError(f"the run did not complete: {summary.format()}")
    return wall_s, RunDir(settings.out).read_manifest()["attempts"][-1]["cluster"]


def _max_relative_difference(a, b) -> tuple[float, bool]:
    from screening.schema import RESULTS_SCHEMA, Col

    a = a.sort_values(Col.ID).reset_index(drop=True)
    b = b.sort_values(Col.ID).reset_index(drop=True)
    same_rows = a[Col.ID].tolist() == b[Col.ID].tolist() and (a[Col.STATUS] == b[Col.STATUS]).all()
    worst = 0.0
    for field in RESULTS_SCHEMA:
        if field.name in a and pd.api.types.is_float_dtype(a[field.name]):
            x, y = a[field.name].to_numpy(float), b[field.name].to_numpy(float)
            both = np.isfinite(x) & np.isfinite(y)
            same_rows &= bool((np.isfinite(x) == np.isfinite(y)).all())
            if both.any():
                worst = max(
                    worst, float(np.max(np.abs(x[both] - y[both]) / np.maximum(np.abs(y[both]), 1e-12)))
                )
    return worst, bool(same_rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = parser.parse_args(argv)
    reason = missing_reason()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    import dask_jobqueue  # noqa: F401 - sets a signal handler: import in the main thread

    from pipelines.rundir import RunDir
    from pipelines.settings import RunSettings

    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        root = Path(tmp)
        node = start_slurm(root / "slurm")
        os.environ["SLURM_CONF"] = str(node.conf)
        try:
            structures = _structures(root / "structures")
            common = {"structures": structures, "n_samples": 2, "partition_size": 1, "progress": False}
            slurm_settings = RunSettings(
                out=root / "slurm-run",
                cluster="slurm",
                device="cpu",
                worker_wait_s=300,
                slurm={"cores": 1, "memory": "4GB", "jobs": 2, "scheduler_host": "127.0.0.1"},
                **common,
            )
            slurm_wall, slurm_cluster = _run(slurm_settings)
            local_settings = RunSettings(out=root / "local-run", cluster="local", workers=2, **common)
            local_wall, local_cluster = _run(local_settings)
        finally:
            node.stop()
        worst, same_rows = _max_relative_difference(
            RunDir(slurm_settings.out).read_results(), RunDir(local_settings.out).read_results()
        )
    code = code_revision()
    section = "\n".join(
        [
            SECTION_TITLE,
            "",
            "`nice .venv/bin/python benchmarks/bench_slurm.py --write` (as root, with `slurm-wlm` and `munge` "
            "installed): a private single-node SLURM 22.05 on loopback (munge, slurmctld, slurmd; "
            f"`tests/slurm_node.py`), the {N_STRUCTURES} smallest bundled Li structures, partitions of 1, "
            "2 jobs of 1 core and 4 GB each, one Dask worker per job; then the same structures on a "
            f"LocalCluster of 2 workers. 2 shared CPU cores; code {code}, {datetime.date.today().isoformat()}.",
            "",
            "| cluster | submit to first worker (s) | run wall time (s) | workers at start |",
            "|---|---|---|---|",
            f"| SLURM, 2 jobs | {slurm_cluster['seconds_to_workers']:.1f} | {slurm_wall:.1f} | "
            f"{slurm_cluster['n_workers']} |",
            f"| LocalCluster, 2 workers | {local_cluster['seconds_to_workers']:.1f} | {local_wall:.1f} | "
            f"{local_cluster['n_workers']} |",
            "",
            f"Results: {'the same rows and statuses' if same_rows else 'ROWS DIFFER'}; largest relative "
            f"difference of any float column {worst:.1e} (float32 potentials in other processes). The SLURM "
            "run starts its work as soon as the first job's worker joins; the second joins while it works.",
            "",
        ]
    )
    publish(SECTION_TITLE, section, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
