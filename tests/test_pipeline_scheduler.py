"""Submission to an existing cluster started here with the ``dask`` command (scheduler and worker
processes on 127.0.0.1), and a worker process killed in the middle of a run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from distributed import Client
from pipeline_inputs import write_structures

from pipelines.run import run_screening
from pipelines.rundir import RunDir
from pipelines.settings import RunSettings
from screening.schema import Col

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
DASK_WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """``dask scheduler`` plus two ``dask worker`` processes (one thread each, with nannies)."""
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    repo = Path(__file__).parents[1]
    log = (folder / "dask.log").open("w")
    processes = [
        subprocess.Popen(
            [
                *DASK,
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            cwd=repo,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ]
    deadline = time.monotonic() + 60
    while not scheduler_file.exists():
        assert time.monotonic() < deadline, "dask scheduler did not start"
        time.sleep(0.1)
    for _ in range(2):
        processes.append(
            subprocess.Popen(
                [
                    *DASK_WORKER,
                    "--scheduler-file",
                    str(scheduler_file),
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                    "--memory-limit",
                    "0",
                ],
                cwd=repo,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    client = Client(scheduler_file=str(scheduler_file), timeout=60)
    client.wait_for_workers(2, timeout=120)
    try:
        yield client
    finally:
        client.close()
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def settings_for(client: Client, structures: Path, out: Path, **kwargs) -> RunSettings:
    values = {"n_samples": 2, "partition_size": 1, "progress": False, "device": "cpu", "retries": 3}
    values.update(kwargs)
    return RunSettings(structures=structures, out=out, scheduler=client.scheduler.address, **values)


def test_run_on_an_existing_scheduler(dask_cluster, tmp_path):
    structures = write_structures(tmp_path / "structures")
    summary = run_screening(settings_for(dask_cluster, structures, tmp_path / "run"))
    assert summary.complete and summary.n_structures == 8
    assert summary.counts == {"ok": 5, "not applicable": 1, "failed:input": 1, "failed:structure": 1}
    attempt = RunDir(tmp_path / "run").read_manifest()["attempts"][-1]
    assert attempt["cluster"]["kind"] == "existing" and attempt["cluster"]["n_workers"] == 2
    # the client went away with the run; the cluster it used is still there
    assert len(dask_cluster.scheduler_info()["workers"]) == 2


def _worker_pids(client: Client) -> dict[str, int]:
    return client.run(os.getpid)


def test_a_killed_worker_loses_and_duplicates_nothing(dask_cluster, tmp_path):
    # 2 copies of each structure: 16 partitions of one structure, so the kill lands mid-run
    structures = write_structures(tmp_path / "structures", n_copies=2)
    settings = settings_for(dask_cluster, structures, tmp_path / "run")
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        results_dir = settings.out / "results"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            busy = [addr for addr, keys in dask_cluster.processing().items() if keys]
            if busy and results_dir.exists() and any(results_dir.glob("part-*.parquet")):
                pid = _worker_pids(dask_cluster)[busy[0]]
                os.kill(pid, signal.SIGKILL)  # its nanny starts a fresh worker process
                killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    summary = run_screening(settings)
    killer.join(timeout=5)
    assert killed, "no worker was killed during the run"
    assert summary.complete and summary.n_partitions_skipped == 0 and not summary.partition_errors
    results = RunDir(settings.out).read_results()
    expected_ids = sorted(
        [f"t-{n}{s}" for n in ("lif", "licl", "nacl", "li2o", "libr", "li-na-f") for s in ("", "-1")]
        + ["t-bad-input", "t-broken-row"]
    )
    assert results[Col.ID].tolist() == expected_ids  # none lost, none duplicated
    assert len(list((settings.out / "results").glob("part-*.parquet"))) == summary.n_partitions
    copies = results.set_index(Col.ID)
    for name in ("lif", "licl", "li2o", "libr"):
        assert copies.loc[f"t-{name}", Col.E_ABOVE_HULL] == pytest.approx(
            copies.loc[f"t-{name}-1", Col.E_ABOVE_HULL]
        )
    client_pids = set(_worker_pids(dask_cluster).values())
    assert killed[0] not in client_pids and len(client_pids) == 2
