"""``screening ingest --source files`` on a Dask cluster: the input files split into chunks, each chunk
a task that parses its files on a worker and writes its rows to one Parquet file atomically.

The chunk files go to a staging folder beside the output (``.OUT.ingest/``), named by the hash of the
chunk's inputs (path, size, modification time), so a rerun after an interruption parses only the chunks
not written yet, and a changed file makes its chunk new. A chunk whose task fails for good (after the
run's retries: a worker killed every time) becomes one failed row per file, with the reason; the other
chunks are unaffected. Once the structures table is written the staging folder is removed (it holds only
what this module wrote).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipelines.cluster import open_client
from pipelines.settings import RunSettings
from screening.io import remove_stale_temporaries, rows_to_table, write_table_atomic
from screening.schema import STRUCTURES_SCHEMA
from screening.sources.files import SOURCE, InputPath, discover_files, rows_from_input, unique_rows
from screening.structures import failed_row

#: Files per chunk (one task) unless the caller says otherwise.
DEFAULT_CHUNK_FILES = 16
#: Names of the chunk files (:func:`plan_chunks` keys).
CHUNK_FILE = re.compile(r"\d{8}-[0-9a-f]{20}\.parquet")


def staging_dir(out: Path) -> Path:
    """Where the chunk files of ``out`` are written until the table is complete."""
    return out.parent / f".{out.name}.ingest"


def _input_signature(item: InputPath) -> str:
    try:
        stat = item.path.stat()
        return f"{item.structure_id}|{item.path}|{stat.st_size}|{stat.st_mtime_ns}|{item.problem}"
    except OSError as exc:
        return f"{item.structure_id}|{item.path}|{exc.strerror}|{item.problem}"


def plan_chunks(inputs: Sequence[InputPath], chunk_files: int) -> list[tuple[str, list[InputPath]]]:
    """``(key, inputs)`` of consecutive chunks of ``chunk_files`` inputs; the key hashes their inputs."""
    chunks = []
    for start in range(0, len(inputs), max(1, chunk_files)):
        items = list(inputs[start : start + chunk_files])
        digest = hashlib.sha256("\n".join(map(_input_signature, items)).encode()).hexdigest()[:20]
        chunks.append((f"{start:08d}-{digest}", items))
    return chunks


def ingest_chunk(items: list[InputPath], path: str) -> int:
    """Parse ``items`` (on a worker) and write their rows to ``path`` atomically; returns the row count."""
    rows = [row for item in items for row in rows_from_input(item)]
    write_table_atomic(rows_to_table(rows, STRUCTURES_SCHEMA), path)
    return len(rows)


def _failed_chunk_rows(items: list[InputPath], error: BaseException) -> list[dict[str, Any]]:
    reason = f"the ingest task of this file failed on the cluster: {type(error).__name__}: {error}"
    return [failed_row(item.structure_id, SOURCE, reason, source_path=str(item.path)) for item in items]


def ingest_files_on_cluster(
    paths: Sequence[str | Path],
    out: Path,
    settings: RunSettings,
    *,
    chunk_files: int = DEFAULT_CHUNK_FILES,
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """The rows of every input under ``paths``, parsed chunk by chunk on the cluster of ``settings``
    (``scheduler``, ``cluster``, ``workers``, ``retries``); chunks already staged are reused."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    inputs = discover_files(paths)
    chunks = plan_chunks(inputs, chunk_files)
    staging = staging_dir(out)
    staging.mkdir(parents=True, exist_ok=True)
    todo = [(key, items) for key, items in chunks if not (staging / f"{key}.parquet").is_file()]
    echo(f"ingest: {len(inputs)} inputs in {len(chunks)} chunks, {len(chunks) - len(todo)} already done")
    failed: dict[str, list[dict[str, Any]]] = {}
    if todo:
        with open_client(settings) as (client, _):
            futures = {
                client.submit(
                    ingest_chunk,
                    items,
                    str(staging / f"{key}.parquet"),
                    retries=settings.retries,
                    pure=False,
                ): (key, items)
                for key, items in todo
            }
            total = sum(len(items) for _, items in todo)
            with tqdm(total=total, unit="file", desc="ingest", disable=not settings.progress) as bar:
                for future in as_completed(futures):
                    key, items = futures[future]
                    try:
                        future.result()
                    except Exception as exc:  # noqa: BLE001 - the chunk's files become failed rows
                        failed[key] = _failed_chunk_rows(items, exc)
                    bar.update(len(items))
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for key, _ in chunks:
        chunk_rows = failed.get(key)
        if chunk_rows is None:
            chunk_rows = pq.read_table(staging / f"{key}.parquet").to_pylist()
        rows.extend(unique_rows(chunk_rows, seen))
    return rows


def remove_staging(out: Path) -> None:
    """Remove the chunk files of ``out`` and their folder; anything else found there is left alone (and
    then the folder too)."""
    staging = staging_dir(out)
    if not staging.is_dir():
        return
    remove_stale_temporaries(staging)
    for path in staging.iterdir():
        if CHUNK_FILE.fullmatch(path.name):
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        staging.rmdir()
