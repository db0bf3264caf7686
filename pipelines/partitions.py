"""Partitioned Parquet in and out: which rows form a partition, reading one, writing one atomically.

The driver only ever reads the ``id`` column of the structures dataset; a worker reads the rows of its own
partition, so memory per process stays flat however large the table grows. Partitions are consecutive
runs of the sorted ids, so the same input and partition size always give the same partitions, which is
what makes a rerun able to skip those already written.
"""

from __future__ import annotations

import hashlib
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from screening.schema import RESULTS_SCHEMA, STRUCTURES_SCHEMA, Col, with_metadata

RESULTS_DIR = "results"
_TMP_MARK = ".tmp-"


@dataclass(frozen=True)
class Partition:
    """One unit of work, retry and resumption.

    Attributes:
        index: position of the partition (names its results file).
        ids: structure ids in the partition, sorted.
    """

    index: int
    ids: tuple[str, ...]

    @property
    def file_name(self) -> str:
        """Name of the partition's results file."""
        return f"part-{self.index:05d}.parquet"


def _structures_dataset(path: str | os.PathLike) -> ds.Dataset:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no structures dataset at {path} (write one with `screening ingest`)")
    return ds.dataset(path, format="parquet", partitioning="hive", schema=STRUCTURES_SCHEMA.remove_metadata())


def structure_ids(path: str | os.PathLike) -> list[str]:
    """Sorted ids of a structures dataset (reads the ``id`` column only).

    Raises:
        FileNotFoundError: no dataset at ``path``.
        ValueError: the dataset is empty or holds an id twice.
    """
    ids = _structures_dataset(path).to_table(columns=[Col.ID]).column(Col.ID).to_pylist()
    if not ids:
        raise ValueError(f"the structures dataset at {path} has no rows")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        duplicates = sorted({i for i in ids if i in seen or seen.add(i)})
        raise ValueError(f"duplicate structure ids in {path}: {duplicates[:5]}")
    return sorted(ids)


def plan_partitions(ids: list[str], partition_size: int) -> list[Partition]:
    """Split sorted ``ids`` into consecutive partitions of at most ``partition_size``."""
    if partition_size < 1:
        raise ValueError(f"partition_size must be positive, got {partition_size}")
    return [
        Partition(index=n, ids=tuple(ids[start : start + partition_size]))
        for n, start in enumerate(range(0, len(ids), partition_size))
    ]


def estimated_costs(path: str | os.PathLike, partitions: list[Partition], n_samples: int) -> list[float]:
    """A rough cost per partition, to start the heaviest first (longest-processing-time-first keeps the
    workers evenly busy to the end): sites per structure, times ``n_samples`` for disordered ones whose
    configurations are sampled. Reads three small columns."""
    table = _structures_dataset(path).to_table(columns=[Col.ID, Col.NSITES, Col.IS_ORDERED])
    cost: dict[str, float] = {}
    for structure_id, nsites, ordered in zip(
        *(table.column(c).to_pylist() for c in table.column_names), strict=True
    ):
        cost[structure_id] = float(nsites or 0) * (1 if ordered in (True, None) else n_samples)
    return [sum(cost.get(i, 0.0) for i in part.ids) for part in partitions]


def ids_fingerprint(ids: list[str]) -> str:
    """sha256 of the sorted ids (identifies the input of a run)."""
    digest = hashlib.sha256()
    for structure_id in ids:
        digest.update(structure_id.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def read_partition(path: str | os.PathLike, ids: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """The structures rows with these ids, sorted by id."""
    table = _structures_dataset(path).to_table(filter=pc.field(Col.ID).isin(list(ids)))
    frame = table.to_pandas().sort_values(Col.ID, kind="stable").reset_index(drop=True)
    missing = set(ids) - set(frame[Col.ID])
    if missing:
        raise ValueError(f"structures missing from {path}: {sorted(missing)[:5]}")
    return frame


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def frame_to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A DataFrame as a table with exactly ``schema`` (absent columns and NaN/None/NA become nulls).

    Column by column through Python values, so an all-missing column (float NaN in pandas) still takes
    the schema's type (string, list, ...).
    """
    arrays = []
    for schema_field in schema:
        if schema_field.name in frame.columns:
            values = [None if _missing(v) else v for v in frame[schema_field.name].tolist()]
        else:
            values = [None] * len(frame)
        try:
            arrays.append(pa.array(values, type=schema_field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"column {schema_field.name!r} does not fit {schema_field.type}: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=schema)


def results_table(frame: pd.DataFrame) -> pa.Table:
    """A results DataFrame as a table with the results schema and its metadata (units)."""
    return frame_to_table(frame, with_metadata(RESULTS_SCHEMA, "results"))


def write_atomic(table: pa.Table, path: str | os.PathLike) -> Path:
    """Write ``table`` to ``path`` under a temporary name, then rename it into place.

    A reader (or a resumed run) sees either the whole file or none; a rerun of the same partition
    replaces the file rather than adding rows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{uuid.uuid4().hex[:8]}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_stale_temporaries(directory: str | os.PathLike) -> int:
    """Delete temporary files a killed run left behind; returns how many."""
    directory = Path(directory)
    if not directory.exists():
        return 0
    stale = [p for p in directory.iterdir() if p.name.startswith(".") and _TMP_MARK in p.name]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def read_results(run_dir: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """The results table of a run directory, rows sorted by id.

    Raises:
        FileNotFoundError: the run has no results yet.
    """
    directory = Path(run_dir) / RESULTS_DIR
    files = sorted(directory.glob("part-*.parquet")) if directory.exists() else []
    if not files:
        raise FileNotFoundError(f"no results in {directory} (run `screening run` first)")
    if columns is not None and Col.ID not in columns:
        columns = [Col.ID, *columns]
    dataset = ds.dataset(files, format="parquet", schema=RESULTS_SCHEMA)
    frame = dataset.to_table(columns=columns).to_pandas()
    return frame.sort_values(Col.ID, kind="stable").reset_index(drop=True)
