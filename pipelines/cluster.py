"""The Dask cluster of a run: an existing scheduler, a LocalCluster, a LocalCUDACluster or SLURM jobs.

GPU workers advertise a ``GPU`` resource and GPU work asks for it, so CPU-only workers never get it; a
run that needs a resource no worker has fails at once with a clear message instead of waiting forever.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from distributed import Client, WorkerPlugin

from pipelines.settings import RunSettings
from pipelines.slurm import SlurmError, job_ids, log_directory, wait_for_slurm_workers
from screening.errors import ScreeningError

GPU_RESOURCE = "GPU"


class ClusterError(ScreeningError, RuntimeError):
    """The cluster cannot run the work (no workers, no worker with the needed resource, missing extra)."""


@dataclass(frozen=True)
class ClusterInfo:
    """What the run needs to know about the cluster it got.

    Attributes:
        kind: ``existing``, ``local``, ``cuda`` or ``slurm``.
        n_workers: workers connected when the run started.
        resources: resources every partition task asks for (``{"GPU": 1}`` on GPU clusters).
        device: torch device the model goes to on the workers (None: the model's own default).
        dashboard: dashboard address, when there is one.
        slurm_job_ids: the SLURM jobs of the workers when the run started (``slurm`` only).
        seconds_to_workers: from asking for the cluster to the workers the run waits for (the first one
            on SLURM), seconds.
    """

    kind: str
    n_workers: int
    resources: dict[str, float] | None
    device: str | None
    dashboard: str | None
    slurm_job_ids: tuple[str, ...] = ()
    seconds_to_workers: float = 0.0


class WorkerSetup(WorkerPlugin):
    """Prepares every worker process for the work: glibc's allocator back to its defaults (the Dask nanny's
    ``MALLOC_TRIM_THRESHOLD_`` made the screening 1.3-1.6x slower, BENCHMARKS.md) and, where given, torch's
    thread count (so N workers on N cores do not oversubscribe)."""

    name = "screening-worker-setup"

    def __init__(self, n_threads: int | None) -> None:
        self.n_threads = n_threads

    def setup(self, worker: Any) -> None:
        from pipelines.worker import restore_malloc_defaults, set_torch_threads

        restore_malloc_defaults()
        if self.n_threads is not None:
            set_torch_threads(self.n_threads)


def available_cores() -> int:
    """Cores this process may use (respects CPU affinity and cgroup-limited containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def visible_gpus() -> int:
    """Number of CUDA devices torch can see here."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_kind(settings: RunSettings) -> str:
    """The cluster kind a run gets: an address wins, then ``--cluster``, then cuda if GPUs are visible."""
    if settings.scheduler:
        return "existing"
    if settings.cluster != "auto":
        return settings.cluster
    return "cuda" if visible_gpus() > 0 else "local"


def _import_extra(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ClusterError(f"{module} is not installed: pip install 'screening[{extra}]'") from exc


def _local_cluster(settings: RunSettings) -> tuple[Any, int]:
    from distributed import LocalCluster

    cores = available_cores()
    n_workers = settings.workers or cores
    try:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=worker_memory_limit_bytes(n_workers, settings.memory_limit_fraction),
        )
    except Exception as exc:  # noqa: BLE001 - CommClosedError, OSError, TimeoutError at start-up
        raise ClusterError(
            f"the local Dask cluster did not start ({type(exc).__name__}: {exc}); "
            "check free memory and try fewer --workers"
        ) from exc
    return cluster, max(1, cores // n_workers)


def total_memory_bytes() -> int:
    """Memory of this machine (or of its cgroup limit, when lower), in bytes."""
    from distributed.system import MEMORY_LIMIT

    return int(MEMORY_LIMIT)


def worker_memory_limit_bytes(n_workers: int, fraction: float) -> int:
    """Memory limit of each local worker: ``fraction`` of the machine shared by ``n_workers``. A worker
    past it is restarted by Dask's nanny and its partition retried (then failed with the reason)."""
    return int(total_memory_bytes() * fraction / max(1, n_workers))


def _cuda_cluster(settings: RunSettings) -> Any:
    dask_cuda = _import_extra("dask_cuda", "cuda")
    n_gpus = visible_gpus()
    if n_gpus == 0:
        raise ClusterError("--cluster cuda: no CUDA device is visible")
    return dask_cuda.LocalCUDACluster(
        n_workers=min(settings.workers or n_gpus, n_gpus),
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        resources={GPU_RESOURCE: 1},
    )


def slurm_cluster(settings: RunSettings) -> Any:
    """A dask-jobqueue ``SLURMCluster`` from ``settings.slurm`` (not yet scaled)."""
    jobqueue = _import_extra("dask_jobqueue", "slurm")
    opts = settings.slurm
    directives = list(opts.job_extra_directives)
    worker_args: list[str] = []
    if opts.gpus_per_job:
        directives.append(f"--gres=gpu:{opts.gpus_per_job}")
        gpus_per_worker = max(1, opts.gpus_per_job // opts.processes)
        worker_args = ["--resources", f"{GPU_RESOURCE}={gpus_per_worker}"]
    return jobqueue.SLURMCluster(
        queue=opts.queue,
        account=opts.account,
        walltime=opts.walltime,
        cores=opts.cores,
        memory=opts.memory,
        processes=opts.processes,
        job_extra_directives=directives,
        worker_extra_args=worker_args,
        log_directory=str(log_directory(settings)),  # created by dask-jobqueue
        scheduler_options={"host": opts.scheduler_host} if opts.scheduler_host else None,
    )


def _wait_for_workers(client: Client, n: int, timeout_s: float) -> None:
    try:
        client.wait_for_workers(n, timeout=timeout_s)
    except TimeoutError as exc:
        raise ClusterError(
            f"no Dask worker connected to {client.scheduler.address} within {timeout_s:.0f} s"
        ) from exc


def check_resources(client: Client, resources: dict[str, float] | None) -> None:
    """Raise if no connected worker offers ``resources`` (the tasks would wait forever).

    Raises:
        ClusterError: naming the missing resource and what the workers offer.
    """
    if not resources:
        return
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    offered = [w.get("resources", {}) for w in workers]
    if not any(all(res.get(k, 0) >= v for k, v in resources.items()) for res in offered):
        raise ClusterError(
            f"no worker offers the resources {resources} these tasks need (workers offer {offered}); "
            f"start GPU workers with `dask worker ... --resources {GPU_RESOURCE}=1`, or run with --device cpu"
        )


@contextmanager
def open_client(settings: RunSettings) -> Iterator[tuple[Client, ClusterInfo]]:
    """Connect to (or start) the cluster the settings ask for; closes what it started on exit.

    Raises:
        ClusterError: no worker appears in time, a needed extra is missing, or no worker can run the tasks.
    """
    kind = resolve_kind(settings)
    start = time.monotonic()
    wants_gpu = (settings.science.device or "").startswith("cuda")
    with ExitStack() as stack:
        torch_threads: int | None = None
        if kind == "existing":
            try:
                client = Client(settings.scheduler, timeout=settings.worker_wait_s)
            except OSError as exc:
                raise ClusterError(f"cannot reach the Dask scheduler at {settings.scheduler}: {exc}") from exc
            stack.callback(client.close)
            _wait_for_workers(client, 1, settings.worker_wait_s)
            workers = client.scheduler_info(n_workers=-1)["workers"].values()
            has_gpu_workers = any(w.get("resources", {}).get(GPU_RESOURCE) for w in workers)
            resources = (
                {GPU_RESOURCE: 1}
                if wants_gpu or (settings.science.device is None and has_gpu_workers)
                else None
            )
            device = settings.science.device or ("cuda" if resources else None)
        else:
            if kind == "local":
                cluster, torch_threads = _local_cluster(settings)
                resources = {GPU_RESOURCE: 1} if wants_gpu else None
                device = settings.science.device or "cpu"
            elif kind == "cuda":
                cluster = _cuda_cluster(settings)
                resources, device = {GPU_RESOURCE: 1}, settings.science.device or "cuda"
            elif kind == "slurm":
                cluster = slurm_cluster(settings)
                cluster.scale(jobs=settings.slurm.jobs)
                gpu = settings.slurm.gpus_per_job > 0
                resources = {GPU_RESOURCE: 1} if gpu or wants_gpu else None
                device = settings.science.device or ("cuda" if gpu else "cpu")
            else:  # pragma: no cover - guarded by the settings' Literal
                raise ClusterError(f"unknown cluster kind {kind!r}")
            stack.callback(cluster.close)
            client = Client(cluster)
            stack.callback(client.close)
            if kind != "slurm":
                _wait_for_workers(client, len(cluster.workers), settings.worker_wait_s)
            else:
                try:
                    wait_for_slurm_workers(client, cluster, settings)
                except (TimeoutError, SlurmError) as exc:
                    raise ClusterError(str(exc)) from exc
        client.register_plugin(WorkerSetup(torch_threads))
        check_resources(client, resources)
        info = ClusterInfo(
            kind=kind,
            n_workers=len(client.scheduler_info(n_workers=-1)["workers"]),
            resources=resources,
            device=device,
            dashboard=getattr(client, "dashboard_link", None),
            slurm_job_ids=tuple(job_ids(cluster)) if kind == "slurm" else (),
            seconds_to_workers=time.monotonic() - start,
        )
        yield client, info
