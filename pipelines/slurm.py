"""Dask workers as SLURM jobs (dask-jobqueue; the cluster itself is made by
:func:`pipelines.cluster.slurm_cluster`): their job ids, and a wait that reports what the jobs are doing
and fails fast, with SLURM's reason, on a job that can never start.

Each job runs ``settings.slurm.processes`` Dask worker processes; its output goes to
``settings.slurm.log_directory`` (default: ``RUN_DIR/slurm-logs``), so a worker that died can be read
about next to the run it served.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipelines.settings import RunSettings
from screening.errors import ScreeningError

#: Pending reasons (``squeue %r``) with which a job never starts: it asks for more than the partition,
#: the account or the QOS allows, or names something that does not exist. Waiting would hang the run.
NEVER_STARTS = frozenset(
    {
        "PartitionConfig",
        "BadConstraints",
        "PartitionNodeLimit",
        "PartitionTimeLimit",
        "InvalidAccount",
        "InvalidQOS",
        "AccountNotAllowed",
        "QOSNotAllowed",
    }
)
#: How often the wait asks ``squeue``, and how often it reports, seconds.
POLL_S = 2.0
REPORT_S = 15.0


class SlurmError(ScreeningError, RuntimeError):
    """A SLURM job of the run cannot start, or every job ended before a worker connected."""


def never_starts(reason: str) -> bool:
    """Whether a pending job with this ``squeue`` reason can never start (see :data:`NEVER_STARTS`)."""
    return reason in NEVER_STARTS or reason.endswith("PerJobLimit")


def log_directory(settings: RunSettings) -> Path:
    """Where the jobs write their output."""
    return Path(settings.slurm.log_directory or settings.out / "slurm-logs")


def job_ids(cluster: Any) -> list[str]:
    """SLURM ids of the cluster's jobs submitted so far (running or pending)."""
    ids = [getattr(job, "job_id", None) for job in getattr(cluster, "workers", {}).values()]
    return sorted({str(i) for i in ids if i})


def job_states(ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``job id -> (state, reason)`` of the jobs ``squeue`` still lists (a finished job is gone)."""
    ids = list(ids)
    if not ids or shutil.which("squeue") is None:
        return {}
    listed = subprocess.run(
        ["squeue", "--noheader", "--jobs", ",".join(ids), "--format", "%i|%T|%r"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    states = {}
    for line in listed.stdout.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        states[job.strip()] = (state.strip(), reason.strip())
    return states


def _request(settings: RunSettings) -> str:
    opts = settings.slurm
    parts = [f"cores={opts.cores}", f"memory={opts.memory}", f"walltime={opts.walltime}"]
    parts += [f"{k}={v}" for k, v in (("queue", opts.queue), ("account", opts.account)) if v]
    if opts.gpus_per_job:
        parts.append(f"gpus={opts.gpus_per_job}")
    return ", ".join(parts)


def _describe(states: dict[str, tuple[str, str]]) -> str:
    return ", ".join(f"{job} {state} ({reason})" for job, (state, reason) in states.items())


def _report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def wait_for_slurm_workers(
    client: Any,
    cluster: Any,
    settings: RunSettings,
    n_workers: int = 1,
    report: Callable[[str], None] = _report,
) -> None:
    """Wait until ``n_workers`` Dask workers joined (at most ``settings.worker_wait_s``), reporting the
    jobs' states every :data:`REPORT_S`.

    Raises:
        SlurmError: a job is pending for a reason it can never leave (with that reason and the request),
            or every job left the queue before a worker connected (see the log directory).
        TimeoutError: no worker within ``timeout_s`` (the jobs are still queued: raise
            ``worker_wait_s`` for a busy queue).
    """
    timeout_s = settings.worker_wait_s
    start = last_report = time.monotonic()
    while len(client.scheduler_info(n_workers=-1)["workers"]) < n_workers:
        ids = job_ids(cluster)
        states = job_states(ids)
        for job, (state, reason) in states.items():
            if state == "PENDING" and never_starts(reason):
                raise SlurmError(
                    f"SLURM job {job} can never start: {reason} (it asks for {_request(settings)}); "
                    "change the slurm settings (cores, memory, walltime, queue, account)"
                )
        if ids and not states and time.monotonic() - start > 3 * POLL_S:
            raise SlurmError(
                f"the SLURM jobs {', '.join(ids)} ended before any Dask worker connected: see their "
                f"output in {log_directory(settings)}"
            )
        now = time.monotonic()
        if now - start > timeout_s:
            summary = _describe(states) or "none queued"
            raise TimeoutError(f"no Dask worker joined within {timeout_s:.0f} s; SLURM jobs: {summary}")
        if now - last_report >= REPORT_S:
            summary = _describe(states) or "submitting"
            report(f"waiting for SLURM workers ({now - start:.0f} s): {summary}")
            last_report = now
        time.sleep(POLL_S)
