"""Cluster selection: a real LocalCluster on loopback, resource checks, SLURM job scripts, bad addresses."""

from __future__ import annotations

import importlib.util

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
