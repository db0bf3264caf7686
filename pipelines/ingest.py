"""``screening ingest`` on a Dask cluster: the input split into chunks, each chunk a task that reads
its structures on a worker and writes their rows to one Parquet file atomically.

- ``files``: chunks of consecutive input files (:func:`plan_file_chunks`).
- ``mp``: a cheap first search lists the matching material ids and chemical systems
  (:func:`screening.sources.mp.mp_material_ids`); the ids, sorted by chemical system, are cut into chunks,
  and each chunk's task downloads its structures by id. All workers share one budget of concurrent
  requests to the API (a Dask semaphore, :data:`MP_SEMAPHORE`), whatever the number of workers; each
  request keeps the client's own retries and back-off (``Retry-After`` honoured).

The chunk files go to a staging folder beside the output (``.OUT.ingest/``), named by a hash of the
chunk's inputs (for files: path, size, modification time; for mp: the ids), so a rerun after an
interruption reads only the chunks not written yet. A chunk whose task fails for good (after the
retries: a worker killed every time, the API down) becomes one failed row per input, with the reason; the
other chunks are unaffected. Once the structures table is written the chunk files are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipelines.cluster import open_client
from pipelines.settings import RunSettings
from screening.io import remove_stale_temporaries, rows_to_table, write_table_atomic
from screening.schema import STRUCTURES_SCHEMA
from screening.sources.files import SOURCE as FILES_SOURCE
from screening.sources.files import InputPath, discover_files, rows_from_input, unique_rows
from screening.sources.mp import SOURCE as MP_SOURCE
from screening.structures import failed_row

#: Files per chunk (one task) unless the caller says otherwise.
DEFAULT_CHUNK_FILES = 16
#: Materials Project ids per chunk (one task, one request for their structures).
DEFAULT_CHUNK_IDS = 200
#: Requests to the Materials Project API in flight at once, across every worker.
DEFAULT_MP_BUDGET = 2
#: Name of the Dask semaphore that holds that budget.
MP_SEMAPHORE = "screening-mp-api"
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


def _key(index: int, signature: str) -> str:
    return f"{index:08d}-{hashlib.sha256(signature.encode()).hexdigest()[:20]}"


@dataclass(frozen=True)
class Chunk:
    """One task: ``read(*args)`` returns the rows; ``ids`` name the inputs (failed rows if it fails)."""

    key: str
    read: Callable[..., list[dict[str, Any]]]
    args: tuple[Any, ...]
    ids: list[str]
    source: str


def plan_file_chunks(inputs: Sequence[InputPath], chunk_files: int) -> list[Chunk]:
    """Chunks of ``chunk_files`` consecutive inputs; the key hashes their paths, sizes and times."""
    chunks = []
    for start in range(0, len(inputs), max(1, chunk_files)):
        items = list(inputs[start : start + chunk_files])
        signature = "\n".join(map(_input_signature, items))
        ids = [item.structure_id for item in items]
        chunks.append(Chunk(_key(start, signature), read_file_chunk, (items,), ids, FILES_SOURCE))
    return chunks


def read_file_chunk(items: list[InputPath]) -> list[dict[str, Any]]:
    """The rows of the files ``items`` (on a worker)."""
    return [row for item in items for row in rows_from_input(item)]


def plan_mp_chunks(
    found: Sequence[tuple[str, str]], chunk_ids: int, credentials: tuple[str, str], options: Any, budget: int
) -> list[Chunk]:
    """Chunks of ``chunk_ids`` material ids, sorted by chemical system then id (a chunk's materials
    share systems, and a rerun plans the same chunks); the key hashes the ids."""
    ordered = sorted(found, key=lambda pair: (pair[1], pair[0]))
    chunks = []
    for start in range(0, len(ordered), max(1, chunk_ids)):
        ids = [material_id for material_id, _ in ordered[start : start + chunk_ids]]
        args = (ids, credentials, options, budget)
        chunks.append(Chunk(_key(start, "\n".join(ids)), read_mp_chunk, args, ids, MP_SOURCE))
    return chunks


def read_mp_chunk(ids: list[str], credentials: tuple[str, str], options: Any, budget: int) -> list[dict]:
    """The rows of the materials ``ids`` (on a worker), holding one of the cluster's ``budget`` leases
    of :data:`MP_SEMAPHORE` while the API is asked."""
    from distributed import Semaphore

    from screening.sources.mp import MPQuery, iter_mp_rows

    api_key, endpoint = credentials
    with Semaphore(max_leases=budget, name=MP_SEMAPHORE):
        return list(
            iter_mp_rows(
                MPQuery(material_ids=ids), api_key=api_key, endpoint=endpoint, client_options=options
            )
        )


def write_chunk(chunk: Chunk, path: str) -> int:
    """Read a chunk (on a worker) and write its rows to ``path`` atomically; returns the row count."""
    rows = chunk.read(*chunk.args)
    write_table_atomic(rows_to_table(rows, STRUCTURES_SCHEMA), path)
    return len(rows)


def _failed_rows(chunk: Chunk, error: BaseException) -> list[dict[str, Any]]:
    reason = f"the ingest task of this input failed on the cluster: {type(error).__name__}: {error}"
    return [failed_row(structure_id, chunk.source, reason) for structure_id in chunk.ids]


def run_chunks(
    chunks: Sequence[Chunk],
    out: Path,
    settings: RunSettings,
    *,
    unit: str = "structure",
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run the chunks not staged yet on the cluster of ``settings`` (``scheduler``, ``cluster``,
    ``workers``, ``retries``) and return every chunk's rows in chunk order, ids unique."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    staging = staging_dir(out)
    staging.mkdir(parents=True, exist_ok=True)
    todo = [chunk for chunk in chunks if not (staging / f"{chunk.key}.parquet").is_file()]
    n_inputs = sum(len(chunk.ids) for chunk in chunks)
    echo(f"ingest: {n_inputs} inputs in {len(chunks)} chunks, {len(chunks) - len(todo)} already done")
    failed: dict[str, list[dict[str, Any]]] = {}
    if todo:
        with open_client(settings) as (client, _):
            futures = {
                client.submit(
                    write_chunk,
                    chunk,
                    str(staging / f"{chunk.key}.parquet"),
                    retries=settings.retries,
                    pure=False,
                ): chunk
                for chunk in todo
            }
            total = sum(len(chunk.ids) for chunk in todo)
            with tqdm(total=total, unit=unit, desc="ingest", disable=not settings.progress) as bar:
                for future in as_completed(futures):
                    chunk = futures[future]
                    try:
                        future.result()
                    except Exception as exc:  # noqa: BLE001 - the chunk's inputs become failed rows
                        failed[chunk.key] = _failed_rows(chunk, exc)
                    bar.update(len(chunk.ids))
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for chunk in chunks:
        chunk_rows = failed.get(chunk.key)
        if chunk_rows is None:
            chunk_rows = pq.read_table(staging / f"{chunk.key}.parquet").to_pylist()
        rows.extend(unique_rows(chunk_rows, seen))
    return rows


def ingest_files_on_cluster(
    paths: Sequence[str | Path],
    out: Path,
    settings: RunSettings,
    *,
    chunk_files: int = DEFAULT_CHUNK_FILES,
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """The rows of every input under ``paths``, read chunk by chunk on the cluster."""
    chunks = plan_file_chunks(discover_files(paths), chunk_files)
    return run_chunks(chunks, out, settings, unit="file", echo=echo)


def ingest_mp_on_cluster(
    query: Any,
    out: Path,
    settings: RunSettings,
    options: Any,
    *,
    chunk_ids: int = DEFAULT_CHUNK_IDS,
    budget: int = DEFAULT_MP_BUDGET,
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """The rows of the Materials Project materials matching ``query``, downloaded chunk by chunk on the
    cluster with at most ``budget`` requests in flight across all workers."""
    from screening.sources.mp import credentials, mp_material_ids

    keys = credentials(None, None)
    found = mp_material_ids(query, api_key=keys[0], endpoint=keys[1], client_options=options)
    echo(f"Materials Project: {len(found)} materials match")
    return run_chunks(plan_mp_chunks(found, chunk_ids, keys, options, budget), out, settings, echo=echo)


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
