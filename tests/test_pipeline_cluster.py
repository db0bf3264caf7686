"""Cluster selection: a real LocalCluster on loopback, resource checks, SLURM job scripts, bad addresses."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from pipelines.cluster import ClusterError, available_cores, open_client, resolve_kind, slurm_cluster
from pipelines.settings import RunSettings


def settings(**kwargs) -> RunSettings:
    return RunSettings(**{"structures": "s", "out": "o", "progress": False, "worker_wait_s": 60, **kwargs})


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


@pytest.mark.timeout(120)
def test_local_cluster_one_thread_per_worker_and_torch_threads_to_match():
    with open_client(settings(cluster="local", workers=1)) as (client, info):
        assert info.kind == "local" and info.n_workers == 1 and info.resources is None
        assert info.device == "cpu"
        (nthreads,) = client.nthreads().values()
        assert nthreads == 1
        assert set(client.run(_torch_threads).values()) == {available_cores()}
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        # the nanny's allocator setting is undone in the worker (it slowed the screening 1.3-1.6x)
        assert set(client.run(_plugins).values()) == {True}


def _plugins(dask_worker) -> bool:
    return "screening-worker-setup" in dask_worker.plugins


def test_the_nanny_allocator_setting_is_undone_only_where_it_was_made():
    """glibc's dynamic mmap threshold is off once MALLOC_TRIM_THRESHOLD_ is set; the call restores it."""
    code = "from pipelines.worker import restore_malloc_defaults as r; print(r())"
    for value, expected in (("65536", "True"), (None, "False")):
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
        if value is not None:
            env["MALLOC_TRIM_THRESHOLD_"] = value
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == expected


@pytest.mark.timeout(120)
def test_gpu_work_without_gpu_workers_fails_at_once():
    with (
        pytest.raises(ClusterError, match="GPU"),
        open_client(settings(cluster="local", workers=1, device="cuda")),
    ):
        pass


@pytest.mark.timeout(60)
def test_unreachable_scheduler_is_a_clear_error():
    s = RunSettings(structures="s", out="o", scheduler="tcp://127.0.0.1:9", worker_wait_s=2)
    assert resolve_kind(s) == "existing"
    with pytest.raises(ClusterError, match="cannot reach"), open_client(s):
        pass


def test_cluster_kind_resolution(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert resolve_kind(settings(cluster="slurm")) == "slurm"
    assert resolve_kind(settings(cluster="local")) == "local"
    assert resolve_kind(settings(scheduler="tcp://127.0.0.1:8786", cluster="local")) == "existing"


@pytest.mark.skipif(importlib.util.find_spec("dask_jobqueue") is None, reason="dask-jobqueue (extra 'slurm')")
def test_slurm_job_script_asks_for_gpus_and_advertises_them(tmp_path):
    s = settings(
        cluster="slurm",
        out=tmp_path / "run",
        slurm={"queue": "gpu", "account": "proj", "gpus_per_job": 2, "processes": 2, "walltime": "02:00:00"},
    )
    cluster = slurm_cluster(s)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p gpu" in script and "#SBATCH -A proj" in script
    assert "#SBATCH --gres=gpu:2" in script and "#SBATCH -t 02:00:00" in script
    assert "--resources GPU=1" in script and "--nworkers 2" in script
    assert f"#SBATCH -e {tmp_path / 'run' / 'slurm-logs'}" in script  # the jobs' output beside the run


def test_slurm_reasons_that_never_clear_are_told_from_waiting_ones():
    from pipelines.slurm import never_starts

    for reason in (
        "PartitionConfig",
        "InvalidAccount",
        "QOSMaxCpuPerJobLimit",
        "AssocMaxWallDurationPerJobLimit",
    ):
        assert never_starts(reason), reason
    for reason in ("Priority", "Resources", "None", "BeginTime", "ReqNodeNotAvail"):
        assert not never_starts(reason), reason
