"""Reading and writing the pipeline's Parquet tables with their explicit schemas.

Datasets are hive-partitioned by a hash bucket of the id (``bucket=3/part-0.parquet``), never by chemical
system, which has far too many values. Both ``pandas.read_parquet(dir)`` and
``dask.dataframe.read_parquet(dir)`` read them back.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from screening.errors import InputError, MissingInputError
from screening.schema import STRUCTURES_SCHEMA, Col, read_metadata, with_metadata

#: Marks the temporary names of atomic writes (``.<name>.tmp-<hex>``).
TMP_MARK = ".tmp-"


def rows_to_table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table from row dicts, filling absent columns with nulls and refusing unknown ones."""
    rows = list(rows)
    unknown = sorted({key for row in rows for key in row} - set(schema.names))
    if unknown:
        raise InputError(f"columns not in the schema: {unknown}")
    return pa.Table.from_pylist([dict(row) for row in rows], schema=schema)


def atomic_path(path: Path) -> Path:
    """A temporary sibling of ``path`` (same folder, so a rename is atomic), unique per call."""
    return path.with_name(f".{path.name}{TMP_MARK}{uuid.uuid4().hex[:8]}")


def write_file_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place: a reader (or a
    resumed run) sees the whole file or none, and a rewrite replaces the file rather than adding to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_table_atomic(table: pa.Table, path: str | os.PathLike) -> Path:
    """Write one Parquet file atomically (:func:`write_file_atomic`)."""
    return write_file_atomic(path, lambda tmp: pq.write_table(table, tmp))


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write a text file atomically (:func:`write_file_atomic`)."""
    return write_file_atomic(path, lambda tmp: tmp.write_text(text))


def remove_stale_temporaries(directory: str | os.PathLike) -> int:
    """Delete the temporary files of atomic writes that a killed process left in ``directory``; returns
    how many (only names this module makes: ``.<name>.tmp-<hex>``)."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    stale = [p for p in directory.iterdir() if p.name.startswith(".") and TMP_MARK in p.name and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def dataset_table_name(path: str | os.PathLike) -> str | None:
    """The table name (``structures``, ...) of a dataset this package wrote at ``path``, else None."""
    common = Path(path) / "_common_metadata"
    if not common.is_file():
        return None
    try:
        return read_metadata(pq.read_schema(common)).get("table")
    except (OSError, ValueError, pa.ArrowInvalid):
        return None


def check_output_directory(out_dir: str | os.PathLike, table_name: str = "structures") -> None:
    """Refuse to write a dataset over anything but an absent or empty folder or a ``table_name`` dataset
    this package wrote before (which is then replaced): a user's own files are never touched.

    Raises:
        InputError: ``out_dir`` is a file, or a folder holding anything else.
    """
    out_dir = Path(out_dir)
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir():
        raise InputError(
            f"--out {out_dir} is a file, not a folder: choose a new folder for the {table_name} table"
        )
    if not any(out_dir.iterdir()) or dataset_table_name(out_dir) == table_name:
        return
    raise InputError(
        f"--out {out_dir} holds other files (not a {table_name} table written by screening): "
        "nothing was written; choose an empty or new folder"
    )


def write_dataset(
    rows: Iterable[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    schema: pa.Schema = STRUCTURES_SCHEMA,
    table_name: str = "structures",
    partition_column: str = Col.BUCKET,
    **metadata: Any,
) -> Path:
    """Write rows as a Parquet dataset partitioned by ``partition_column``.

    ``out_dir`` must be absent, empty, or a ``table_name`` dataset written here before, which is replaced
    (:func:`check_output_directory`). The dataset is written beside ``out_dir`` under a temporary name and
    swapped into place at the end, so a reader never sees a half-written dataset.

    Returns:
        The dataset directory.

    Raises:
        InputError: ``out_dir`` holds something else (nothing is written).
    """
    out_dir = Path(out_dir)
    check_output_directory(out_dir, table_name)
    table = rows_to_table(rows, with_metadata(schema, table_name, **metadata))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = atomic_path(out_dir)
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
        old = atomic_path(out_dir)
        out_dir.rename(old)  # only ever our own dataset (checked above)
        tmp_dir.rename(out_dir)
        shutil.rmtree(old)
    else:
        tmp_dir.rename(out_dir)
    return out_dir


def read_table(path: str | os.PathLike, schema: pa.Schema = STRUCTURES_SCHEMA) -> pa.Table:
    """Read a dataset written by :func:`write_dataset` (or one Parquet file) with its schema."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"no table at {path}")
    dataset = ds.dataset(path, format="parquet", partitioning="hive", schema=schema.remove_metadata())
    table = dataset.to_table()
    common = path / "_common_metadata"
    if common.exists():
        table = table.replace_schema_metadata(pq.read_schema(common).metadata)
    return table


def structures_dataset(path: str | os.PathLike) -> ds.Dataset:
    """The structures dataset at ``path`` as a lazy pyarrow dataset (read columns or rows from it).

    Raises:
        FileNotFoundError: no dataset at ``path``.
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"no structures dataset at {path} (write one with `screening ingest`)")
    return ds.dataset(path, format="parquet", partitioning="hive", schema=STRUCTURES_SCHEMA.remove_metadata())


def read_structures(path: str | os.PathLike) -> pd.DataFrame:
    """The structures table at ``path`` as a pandas DataFrame, rows sorted by id."""
    return read_table(path).to_pandas().sort_values(Col.ID, kind="stable").reset_index(drop=True)


def table_metadata(path: str | os.PathLike) -> dict:
    """The ``screening`` metadata (schema version, units, ...) of a dataset written here."""
    path = Path(path)
    schema_file = path / "_common_metadata" if path.is_dir() else path
    return read_metadata(pq.read_schema(schema_file))
