"""Reading and writing the pipeline's Parquet tables with their explicit schemas.

Datasets are hive-partitioned by a hash bucket of the id (``bucket=3/part-0.parquet``), never by chemical
system, which has far too many values. Both ``pandas.read_parquet(dir)`` and
``dask.dataframe.read_parquet(dir)`` read them back.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from screening.schema import STRUCTURES_SCHEMA, Col, read_metadata, with_metadata


def rows_to_table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table from row dicts, filling absent columns with nulls and refusing unknown ones."""
    rows = list(rows)
    unknown = sorted({key for row in rows for key in row} - set(schema.names))
    if unknown:
        raise ValueError(f"columns not in the schema: {unknown}")
    return pa.Table.from_pylist([dict(row) for row in rows], schema=schema)


def write_dataset(
    rows: Iterable[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    schema: pa.Schema = STRUCTURES_SCHEMA,
    table_name: str = "structures",
    partition_column: str = Col.BUCKET,
    **metadata: Any,
) -> Path:
    """Write rows as a Parquet dataset partitioned by ``partition_column``, replacing what was there.

    The dataset is written next to ``out_dir`` under a temporary name and moved into place at the end, so
    a reader never sees a half-written dataset.

    Returns:
        The dataset directory.
    """
    out_dir = Path(out_dir)
    table = rows_to_table(rows, with_metadata(schema, table_name, **metadata))
    tmp_dir = out_dir.with_name(f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}")
    ds.write_dataset(
        table,
        tmp_dir,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([table.schema.field(partition_column)]), flavor="hive"),
        basename_template="part-{i}.parquet",
        existing_data_behavior="overwrite_or_ignore",
    )
    # keep the full schema (with metadata) discoverable without reading a data file
    pq.write_metadata(table.schema, tmp_dir / "_common_metadata")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp_dir.rename(out_dir)
    return out_dir


def read_table(path: str | os.PathLike, schema: pa.Schema = STRUCTURES_SCHEMA) -> pa.Table:
    """Read a dataset written by :func:`write_dataset` (or one Parquet file) with its schema."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no table at {path}")
    dataset = ds.dataset(path, format="parquet", partitioning="hive", schema=schema.remove_metadata())
    table = dataset.to_table()
    common = path / "_common_metadata"
    if common.exists():
        table = table.replace_schema_metadata(pq.read_schema(common).metadata)
    return table


def read_structures(path: str | os.PathLike) -> pd.DataFrame:
    """The structures table at ``path`` as a pandas DataFrame, rows sorted by id."""
    return read_table(path).to_pandas().sort_values(Col.ID, kind="stable").reset_index(drop=True)


def table_metadata(path: str | os.PathLike) -> dict:
    """The ``screening`` metadata (schema version, units, ...) of a dataset written here."""
    path = Path(path)
    schema_file = path / "_common_metadata" if path.is_dir() else path
    return read_metadata(pq.read_schema(schema_file))
