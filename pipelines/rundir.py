"""The run directory: the one owner of its layout, its identity, its lock and its atomic writes.

Layout::

    RUN_DIR/run.json                     configuration, versions, model, hull, input hashes, timings, counts
    RUN_DIR/results/part-00000.parquet   one file per partition (RESULTS_SCHEMA), written atomically
    RUN_DIR/ranked.parquet               written by ``screening rank``
    RUN_DIR/figures/                     written by the ranking notebook
    RUN_DIR/.lock                        held while a run writes here (host, pid, start time)

Identity: every results file carries, in its Parquet metadata, the hash of the settings that produced it
(science, partition plan and hull references: ``config_sha256``) and the hash of its partition's input
(ids and structure contents: ``inputs_sha256``). A rerun reuses a file only when both match, recomputes
it when its input changed, and refuses to run when a partition file was computed under other settings,
whether ``run.json`` is there or not. Files in ``results/`` that no run of this directory wrote are
reported and ignored, never read and never deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from screening.config import ScienceConfig
from screening.errors import InputError, MissingInputError, ScreeningError
from screening.io import remove_stale_temporaries, write_table_atomic, write_text_atomic
from screening.schema import RESULTS_SCHEMA, Col

MANIFEST_NAME = "run.json"
RESULTS_DIR = "results"
RANKED_NAME = "ranked.parquet"
FIGURES_DIR = "figures"
LOCK_NAME = ".lock"
#: Key of the run identity in a results file's Parquet metadata.
IDENTITY_KEY = b"screening_run"

_PART_NAME = re.compile(r"^part-(\d{5})\.parquet$")


class RunDirError(ScreeningError, RuntimeError):
    """The run directory holds a different run, or its results cannot be read as one table."""


class RunDirLocked(InputError):
    """Another run holds the run directory's lock."""


@dataclass(frozen=True)
class PartitionIdentity:
    """What a results file was computed from.

    Attributes:
        config_sha256: hash of the result-defining settings and the hull references.
        inputs_sha256: hash of the partition's ids and structure contents.
    """

    config_sha256: str
    inputs_sha256: str


@dataclass(frozen=True)
class RunInfo:
    """What a finished run was, as readers (``rank``, the notebook) need it.

    Attributes:
        run_id: the run's identity.
        science: the science settings the results were computed with.
        model_name: the energy model that ran (None before any partition finished).
        hull_reference: the hull reference sets the rows were placed on.
        counts: rows by outcome (``ok``, ``not applicable``, ``failed:<stage>``).
        ranking: the settings and outcome of the last ``screening rank`` (empty before it).
    """

    run_id: str
    science: ScienceConfig
    model_name: str | None
    hull_reference: list[str]
    counts: dict[str, int]
    ranking: dict[str, Any]


def partition_file_name(index: int) -> str:
    """Name of partition ``index``'s results file."""
    return f"part-{index:05d}.parquet"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunDir:
    """A run directory (see the module docstring). Cheap to make: nothing is read until asked."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).resolve()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # --- layout ------------------------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    @property
    def results_dir(self) -> Path:
        return self.path / RESULTS_DIR

    @property
    def ranked_path(self) -> Path:
        return self.path / RANKED_NAME

    @property
    def figures_dir(self) -> Path:
        return self.path / FIGURES_DIR

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_NAME

    def results_file(self, index: int) -> Path:
        """The results file of partition ``index``."""
        return self.results_dir / partition_file_name(index)

    def notebook_path(self, name: str) -> Path:
        """Where an executed notebook ``name`` goes."""
        return self.path / f"{name}.ipynb"

    # --- run.json --------------------------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any] | None:
        """``run.json``, or None when there is none yet.

        Raises:
            RunDirError: the file is not valid JSON.
        """
        if not self.manifest_path.exists():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise RunDirError(
                f"{self.manifest_path} is not valid JSON ({exc}); move it away to rerun"
            ) from exc

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        """Write ``run.json`` atomically."""
        return write_text_atomic(
            json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", self.manifest_path
        )

    def info(self) -> RunInfo:
        """The run's identity, science, model, hull and counts from ``run.json``.

        Raises:
            FileNotFoundError: no ``run.json`` (not a run directory, or never run).
        """
        manifest = self.read_manifest()
        if manifest is None:
            raise MissingInputError(
                f"no {MANIFEST_NAME} in {self.path}: not a run directory of `screening run`"
            )
        return RunInfo(
            run_id=manifest["run_id"],
            science=ScienceConfig(**manifest.get("science", {})),
            model_name=manifest.get("model", {}).get("name"),
            hull_reference=list(manifest.get("hull_reference", [])),
            counts=dict(manifest.get("counts", {})),
            ranking=dict(manifest.get("ranking", {})),
        )

    # --- lock ------------------------------------------------------------------------------------------

    def _holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.lock_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def _try_lock(self) -> bool:
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, handle)
        return True

    def _stale(self, holder: dict[str, Any] | None) -> bool:
        """A lock whose holder is gone: its process on this host no longer exists (or it is unreadable
        and older than a minute: a holder killed while writing it)."""
        if holder is None:
            with contextlib.suppress(OSError):
                return time.time() - self.lock_path.stat().st_mtime > 60
            return False
        return holder.get("host") == socket.gethostname() and not _pid_alive(int(holder.get("pid", -1)))

    @contextlib.contextmanager
    def lock(self, wait_s: float = 0.0, poll_s: float = 0.5) -> Iterator[None]:
        """Hold the directory's lock while the block runs; a stale lock (its process gone) is taken over.

        Raises:
            RunDirLocked: another live process holds it for longer than ``wait_s``.
        """
        deadline = time.monotonic() + wait_s
        while not self._try_lock():
            holder = self._holder()
            if self._stale(holder):
                self.lock_path.unlink(missing_ok=True)
                continue
            if time.monotonic() >= deadline:
                who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
                raise RunDirLocked(
                    f"{self.path} is in use by {who} (lock {self.lock_path}); wait for that run to finish "
                    "or choose another --out"
                )
            time.sleep(poll_s)
        try:
            yield
        finally:
            self.lock_path.unlink(missing_ok=True)

    # --- results ---------------------------------------------------------------------------------------

    def write_partition(self, index: int, table: pa.Table, identity: PartitionIdentity) -> Path:
        """Write partition ``index``'s results atomically, stamped with its identity."""
        stamp = json.dumps({"config_sha256": identity.config_sha256, "inputs_sha256": identity.inputs_sha256})
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), IDENTITY_KEY: stamp.encode()})
        return write_table_atomic(table, self.results_file(index))

    @staticmethod
    def read_identity(path: Path) -> PartitionIdentity | None:
        """The identity stamped in a results file, or None (not ours, unreadable, or no stamp)."""
        try:
            metadata = pq.read_schema(path).metadata or {}
            stamp = json.loads(metadata[IDENTITY_KEY])
            return PartitionIdentity(stamp["config_sha256"], stamp["inputs_sha256"])
        except (OSError, KeyError, ValueError, TypeError, pa.ArrowInvalid):
            return None

    def scan_results(self) -> tuple[dict[int, PartitionIdentity], list[Path]]:
        """The partition files with their identity, and the files this directory's runs did not write
        (other names, unreadable, or without an identity stamp)."""
        ours: dict[int, PartitionIdentity] = {}
        foreign: list[Path] = []
        if not self.results_dir.is_dir():
            return ours, foreign
        remove_stale_temporaries(self.results_dir)
        for path in sorted(self.results_dir.iterdir()):
            match = _PART_NAME.match(path.name)
            identity = self.read_identity(path) if match and path.is_file() else None
            if identity is None:
                foreign.append(path)
            else:
                ours[int(match.group(1))] = identity
        return ours, foreign

    def read_results(
        self, columns: list[str] | None = None, *, partitions: list[int] | None = None
    ) -> pd.DataFrame:
        """The results table, rows sorted by id.

        Args:
            columns: columns to read (``id`` is always included); None: all.
            partitions: the partitions of the run's plan; None: those of ``run.json``, else every
                partition file present.

        Raises:
            FileNotFoundError: no results yet.
            RunDirError: the partition files were computed under different settings, or repeat an id.
        """
        ours, _ = self.scan_results()
        if partitions is None:
            manifest = self.read_manifest() or {}
            planned = manifest.get("partitions")
            partitions = [int(i) for i in planned] if planned else sorted(ours)
        present = [i for i in partitions if i in ours]
        if not present:
            raise MissingInputError(f"no results in {self.results_dir} (run `screening run` first)")
        configs = {ours[i].config_sha256 for i in present}
        if len(configs) > 1:
            raise RunDirError(
                f"{self.results_dir} holds partitions computed under {len(configs)} different settings; "
                "rerun into a new --out"
            )
        if columns is not None and Col.ID not in columns:
            columns = [Col.ID, *columns]
        files = [self.results_file(i) for i in present]
        frame = (
            ds.dataset(files, format="parquet", schema=RESULTS_SCHEMA).to_table(columns=columns).to_pandas()
        )
        if frame[Col.ID].duplicated().any():
            repeated = sorted(frame.loc[frame[Col.ID].duplicated(), Col.ID].unique())[:5]
            raise RunDirError(f"results of {self.path} repeat ids {repeated}: the partitions overlap")
        return frame.sort_values(Col.ID, kind="stable").reset_index(drop=True)

    # --- ranked ----------------------------------------------------------------------------------------

    def write_ranked(self, table: pa.Table) -> Path:
        """Write ``ranked.parquet`` atomically."""
        return write_table_atomic(table, self.ranked_path)

    def read_ranked(self) -> pd.DataFrame:
        """``ranked.parquet`` sorted by rank.

        Raises:
            FileNotFoundError: ``screening rank`` has not been run on this directory.
        """
        if not self.ranked_path.exists():
            raise MissingInputError(
                f"no {RANKED_NAME} in {self.path} (run `screening rank {self.path}` first)"
            )
        return pd.read_parquet(self.ranked_path).sort_values(Col.RANK).reset_index(drop=True)
