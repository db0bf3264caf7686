"""Partitions of the structures table: which rows form one, what its input hash is, reading its rows,
and turning its results into a table with the results schema (the run directory writes it).

The driver only ever reads a few small columns of the structures dataset (ids, content hashes, sizes); a
worker reads the rows of its own partition, so memory per process stays flat however large the table grows. Partitions are consecutive
runs of the sorted ids, so the same input and partition size always give the same partitions, which is
what makes a rerun able to skip those already written.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from screening.errors import InputError
from screening.io import structures_dataset
from screening.schema import RESULTS_SCHEMA, Col, is_missing, with_metadata


@dataclass(frozen=True)
class Partition:
    """One unit of work, retry and resumption.

    Attributes:
        index: position of the partition (names its results file).
        ids: structure ids in the partition, sorted.
    """

    index: int
    ids: tuple[str, ...]


def structure_ids(path: str | os.PathLike) -> list[str]:
    """Sorted ids of a structures dataset (reads the ``id`` column only).

    Raises:
        FileNotFoundError: no dataset at ``path``.
        ValueError: the dataset is empty or holds an id twice.
    """
    ids = structures_dataset(path).to_table(columns=[Col.ID]).column(Col.ID).to_pylist()
    if not ids:
        raise InputError(f"the structures dataset at {path} has no rows")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        duplicates = sorted({i for i in ids if i in seen or seen.add(i)})
        raise InputError(f"duplicate structure ids in {path}: {duplicates[:5]}")
    return sorted(ids)


def plan_partitions(ids: list[str], partition_size: int) -> list[Partition]:
    """Split sorted ``ids`` into consecutive partitions of at most ``partition_size``."""
    if partition_size < 1:
        raise InputError(f"partition_size must be positive, got {partition_size}")
    return [
        Partition(index=n, ids=tuple(ids[start : start + partition_size]))
        for n, start in enumerate(range(0, len(ids), partition_size))
    ]


def estimated_costs(path: str | os.PathLike, partitions: list[Partition], n_samples: int) -> list[float]:
    """A rough cost per partition, to start the heaviest first (longest-processing-time-first keeps the
    workers evenly busy to the end): sites per structure, times ``n_samples`` for disordered ones whose
    configurations are sampled. Reads three small columns."""
    table = structures_dataset(path).to_table(columns=[Col.ID, Col.NSITES, Col.IS_ORDERED])
    cost: dict[str, float] = {}
    for structure_id, nsites, ordered in zip(
        *(table.column(c).to_pylist() for c in table.column_names), strict=True
    ):
        cost[structure_id] = float(nsites or 0) * (1 if ordered in (True, None) else n_samples)
    return [sum(cost.get(i, 0.0) for i in part.ids) for part in partitions]


def partition_inputs_sha256(path: str | os.PathLike, partitions: list[Partition]) -> list[str]:
    """Per partition, a hash of its ids and of each structure's content, so a partition whose input changed
    is recomputed and the others are reused.

    A structure's content is its ``structure_sha256`` (lattice, positions, concentrations) plus its
    ``species`` entries (which carry the oxidation states the transport stage uses) and, for a failed
    row, its error. Reads these small columns only; a row without a content hash (a table from an older
    release) is hashed from its structure columns.
    """
    from screening.structures import content_sha256

    columns = [Col.ID, Col.STRUCTURE_SHA256, Col.SPECIES, Col.STATUS, Col.ERROR]
    table = structures_dataset(path).to_table(columns=columns)
    content: dict[str, str] = {}
    unhashed: list[str] = []
    for row in table.to_pylist():
        if row[Col.STRUCTURE_SHA256] is None and row[Col.STATUS] == "ok":
            unhashed.append(row[Col.ID])
        species = json.dumps(row[Col.SPECIES], sort_keys=True, default=str)
        content[row[Col.ID]] = f"{row[Col.STRUCTURE_SHA256]}|{species}|{row[Col.STATUS]}|{row[Col.ERROR]}"
    if unhashed:
        rows = structures_dataset(path).to_table(filter=pc.field(Col.ID).isin(unhashed)).to_pylist()
        for row in rows:
            content[row[Col.ID]] += "|" + content_sha256(row)
    hashes = []
    for part in partitions:
        digest = hashlib.sha256()
        for structure_id in part.ids:
            digest.update(f"{structure_id}\0{content[structure_id]}\0".encode())
        hashes.append(digest.hexdigest())
    return hashes


def read_partition(path: str | os.PathLike, ids: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """The structures rows with these ids, sorted by id."""
    table = structures_dataset(path).to_table(filter=pc.field(Col.ID).isin(list(ids)))
    frame = table.to_pandas().sort_values(Col.ID, kind="stable").reset_index(drop=True)
    missing = set(ids) - set(frame[Col.ID])
    if missing:
        raise InputError(f"structures missing from {path}: {sorted(missing)[:5]}")
    return frame


def frame_to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A DataFrame as a table with exactly ``schema`` (absent columns and NaN/None/NA become nulls).

    Column by column through Python values, so an all-missing column (float NaN in pandas) still takes
    the schema's type (string, list, ...).
    """
    arrays = []
    for schema_field in schema:
        if schema_field.name in frame.columns:
            values = [None if is_missing(v) else v for v in frame[schema_field.name].tolist()]
        else:
            values = [None] * len(frame)
        try:
            arrays.append(pa.array(values, type=schema_field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(f"column {schema_field.name!r} does not fit {schema_field.type}: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=schema)


def results_table(frame: pd.DataFrame) -> pa.Table:
    """A results DataFrame as a table with the results schema and its metadata (units)."""
    return frame_to_table(frame, with_metadata(RESULTS_SCHEMA, "results"))
