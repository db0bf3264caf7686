"""``--cluster slurm`` against a real single-node SLURM (``slurm_node.py``): jobs submitted with sbatch,
their Dask workers join, the results equal a LocalCluster run, a cancelled job loses no row, and a job
that can never start fails the run at once with SLURM's reason."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
from pipeline_inputs import assert_same_results, write_structures
from slurm_node import missing_reason, start_slurm

from pipelines.cluster import ClusterError
from pipelines.run import run_screening
from pipelines.rundir import RunDir
from pipelines.settings import RunSettings
from screening.schema import Col

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(900)]

# dask_jobqueue sets a signal handler when imported, which only the main thread may do: import it here,
# before a test runs a screening in a thread
pytest.importorskip("dask_jobqueue")

N_ROWS = 8  # 6 structures and 2 bad rows (pipeline_inputs)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    node = start_slurm(tmp_path_factory.mktemp("slurm"))
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(node.conf)
    yield node
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous
    node.stop()


@pytest.fixture(scope="module")
def structures(tmp_path_factory):
    return write_structures(tmp_path_factory.mktemp("input") / "structures")


def slurm_settings(structures, out, **slurm) -> RunSettings:
    options = {"cores": 1, "memory": "4GB", "jobs": 2, "walltime": "00:30:00", "scheduler_host": "127.0.0.1"}
    return RunSettings(
        structures=structures,
        out=out,
        n_samples=2,
        partition_size=1,
        progress=False,
        cluster="slurm",
        device="cpu",
        worker_wait_s=240,
        slurm={**options, **slurm},
    )


def test_a_run_through_slurm_equals_a_local_run_and_records_its_jobs(slurm, structures, tmp_path):
    settings = slurm_settings(structures, tmp_path / "slurm-run")
    summary = run_screening(settings)
    assert summary.complete and summary.n_structures == N_ROWS
    local = settings.model_copy(update={"out": tmp_path / "local-run", "cluster": "local", "workers": 2})
    assert run_screening(local).complete
    slurm_results = RunDir(settings.out).read_results()
    local_results = RunDir(local.out).read_results().assign(**{Col.RUN_ID: slurm_results[Col.RUN_ID].iloc[0]})
    assert_same_results(slurm_results, local_results)
    (attempt,) = RunDir(settings.out).read_manifest()["attempts"]
    assert attempt["cluster"]["kind"] == "slurm" and attempt["cluster"]["slurm_job_ids"]
    assert attempt["cluster"]["seconds_to_workers"] > 0
    # the jobs' output lies next to the run
    logs = sorted((settings.out / "slurm-logs").iterdir())
    assert any(path.name.endswith(".err") or path.name.endswith(".out") for path in logs)


def test_a_cancelled_worker_job_loses_no_row(slurm, structures, tmp_path):
    settings = slurm_settings(structures, tmp_path / "run")
    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.update(summary=run_screening(settings)))
    runner.start()
    results_dir, cancelled = settings.out / "results", None
    deadline = time.monotonic() + 600
    while runner.is_alive() and time.monotonic() < deadline:
        written = list(results_dir.glob("*.parquet")) if results_dir.is_dir() else []
        manifest = RunDir(settings.out).read_manifest() or {}
        jobs = (manifest.get("attempts") or [{}])[-1].get("cluster", {}).get("slurm_job_ids", [])
        if written and jobs:
            cancelled = jobs[0]
            subprocess.run(["scancel", cancelled], check=True)
            break
        time.sleep(0.2)
    runner.join(timeout=600)
    assert cancelled is not None, "the run ended before a job could be cancelled"
    summary = outcome["summary"]
    assert summary.complete
    results = RunDir(settings.out).read_results()
    assert len(results) == N_ROWS and results[Col.ID].is_unique


def test_a_job_that_can_never_start_fails_the_run_with_slurms_reason(slurm, structures, tmp_path):
    settings = slurm_settings(structures, tmp_path / "run", cores=4 * slurm.cpus, jobs=1)
    start = time.monotonic()
    with pytest.raises(ClusterError, match="can never start: PartitionConfig"):
        run_screening(settings)
    assert time.monotonic() - start < 60  # not the 240 s worker wait
