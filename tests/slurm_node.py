"""A real single-node SLURM for the tests: munge with a generated key on a private socket, slurmctld and
slurmd on 127.0.0.1 with private ports and state directories, one partition sized to this machine.

Needs the Debian packages ``slurm-wlm`` and ``munge`` (``.ci/run`` installs them) and root (slurmd
runs jobs as their user). :func:`start_slurm` returns a :class:`SlurmNode` once ``sinfo`` shows the node
idle; :meth:`SlurmNode.stop` stops exactly the daemons it started (by their pid files).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scancel")


def missing_reason() -> str | None:
    """Why a SLURM node cannot start here (None when it can)."""
    absent = [name for name in BINARIES if shutil.which(name) is None]
    if absent:
        return f"SLURM binaries not installed ({', '.join(absent)}): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "a private slurmd must run as root"
    return None


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _node_resources() -> tuple[str, int, int]:
    """Node name, CPUs and memory (MB, 80 % of what slurmd sees) as ``slurmd -C`` reports them."""
    line = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
    return fields["NodeName"], int(fields["CPUs"]), int(int(fields["RealMemory"]) * 0.8)


@dataclass
class SlurmNode:
    root: Path
    conf: Path
    cpus: int
    memory_mb: int
    pid_files: tuple[Path, ...]

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def stop(self) -> None:
        """Stop the daemons this node started (slurmd, slurmctld, munged), by pid."""
        for pid_file in self.pid_files:
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)


def start_slurm(root: Path, timeout_s: float = 60.0) -> SlurmNode:
    """Start munge, slurmctld and slurmd under ``root`` and wait until the node is idle.

    Raises:
        RuntimeError: the node did not become idle in time (the daemons' logs are in ``root/log``).
    """
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    key = root / "munge" / "munge.key"
    subprocess.run(["mungekey", "--create", "--keyfile", str(key), "--bits", "1024"], check=True)
    key.chmod(0o600)
    munge_socket = root / "munge" / "munge.socket"
    subprocess.run(
        [
            "munged",
            f"--socket={munge_socket}",
            f"--key-file={key}",
            f"--log-file={root / 'log' / 'munged.log'}",
            f"--pid-file={root / 'munge' / 'munged.pid'}",
            f"--seed-file={root / 'munge' / 'munged.seed'}",
            "--force",
        ],
        check=True,
    )
    node, cpus, memory_mb = _node_resources()
    ctld_port, slurmd_port = _free_ports(2)
    conf = root / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=screening-test",
                f"SlurmctldHost={node}(127.0.0.1)",
                f"SlurmctldPort={ctld_port}",
                f"SlurmdPort={slurmd_port}",
                "AuthType=auth/munge",
                f"AuthInfo=socket={munge_socket}",
                "CredType=cred/munge",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"StateSaveLocation={root / 'state'}",
                f"SlurmdSpoolDir={root / 'spool'}",
                f"SlurmctldPidFile={root / 'slurmctld.pid'}",
                f"SlurmdPidFile={root / 'slurmd.pid'}",
                f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
                f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SchedulerType=sched/backfill",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "ReturnToService=2",
                "MpiDefault=none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
                f"PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    pid_files = (root / "slurmd.pid", root / "slurmctld.pid", root / "munge" / "munged.pid")
    slurm = SlurmNode(root, conf, cpus, memory_mb, pid_files)
    try:
        subprocess.run(["slurmctld", "-f", str(conf)], env=env, check=True)
        subprocess.run(["slurmd", "-f", str(conf)], env=env, check=True)
    except subprocess.CalledProcessError:
        slurm.stop()  # what did start (munged, perhaps slurmctld) does not outlive the failure
        raise
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["sinfo", "--noheader", "--format", "%T"], env=env, capture_output=True, text=True, check=False
        ).stdout.strip()
        if state == "idle":
            return slurm
        time.sleep(0.5)
    slurm.stop()
    raise RuntimeError(f"the SLURM node did not become idle in {timeout_s:.0f} s: see {root / 'log'}")
