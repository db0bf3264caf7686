"""A screening run: partitions of the structures table screened on Dask workers, results written per
partition, resumable, retried, with progress, a summary and ``run.json``.

Layout of a run directory::

    RUN_DIR/run.json                  configuration, versions, model checksums, hull, timings, counts
    RUN_DIR/results/part-00000.parquet  one file per partition (RESULTS_SCHEMA), written atomically
    RUN_DIR/ranked.parquet            written by ``screening rank``

A rerun with the same settings and input skips the partitions whose file exists, so an interrupted run
finishes where it stopped and ends with the same tables as an uninterrupted one. A run directory holding
a run with other result-defining settings is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.cluster import ClusterInfo, open_client
from pipelines.manifest import base_manifest, now_iso, read_manifest, write_manifest
from pipelines.partitions import (
    RESULTS_DIR,
    Partition,
    estimated_costs,
    ids_fingerprint,
    plan_partitions,
    read_results,
    remove_stale_temporaries,
    structure_ids,
)
from pipelines.settings import RunSettings
from pipelines.worker import PartitionReport, run_partition
from screening.errors import ScreeningError
from screening.schema import Col


class RunDirError(ScreeningError, RuntimeError):
    """The run directory holds a different run."""


@dataclass
class RunSummary:
    """How a run went.

    Attributes:
        run_dir: the run directory.
        run_id: identifier of the run's settings and input.
        n_structures: rows in the input (and in the results once complete).
        n_partitions: partitions in the plan.
        n_partitions_skipped: partitions already written by an earlier attempt.
        counts: rows of the whole results table by outcome (``ok``, ``not applicable``, ``failed:<stage>``).
        wall_time_s: time of this invocation, in s.
        n_screened: structures screened by this invocation.
        partition_errors: partitions that could not be completed, with the error.
    """

    run_dir: Path
    run_id: str
    n_structures: int
    n_partitions: int
    n_partitions_skipped: int
    counts: dict[str, int]
    wall_time_s: float
    n_screened: int
    partition_errors: dict[int, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every partition has its results file."""
        return not self.partition_errors and sum(self.counts.values()) == self.n_structures

    @property
    def structures_per_s(self) -> float:
        """Throughput of this invocation (structures screened per second of wall time)."""
        return self.n_screened / self.wall_time_s if self.wall_time_s > 0 else 0.0

    def format(self) -> str:
        """A few lines for the terminal."""
        failed = {k.split(":", 1)[1]: v for k, v in sorted(self.counts.items()) if k.startswith("failed:")}
        lines = [
            f"run {self.run_id} in {self.run_dir}",
            f"  structures: {self.n_structures}   partitions: {self.n_partitions} "
            f"({self.n_partitions_skipped} already done)",
            f"  ok: {self.counts.get('ok', 0)}   not applicable: {self.counts.get('not applicable', 0)}   "
            f"failed: {sum(failed.values())}"
            + (" (" + ", ".join(f"{stage}: {n}" for stage, n in failed.items()) + ")" if failed else ""),
            f"  wall time: {self.wall_time_s:.1f} s   throughput: {self.structures_per_s:.2f} structures/s "
            f"({self.n_screened} screened now)",
        ]
        for index, error in sorted(self.partition_errors.items()):
            lines.append(f"  partition {index} not done: {error}")
        return "\n".join(lines)


def compute_run_id(settings: RunSettings, ids_sha256: str) -> str:
    """Identifier of a run: a hash of its result-defining settings and of its input ids."""
    payload = json.dumps({"settings": settings.result_defining(), "ids": ids_sha256}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def references_path(settings: RunSettings) -> str | None:
    """The reference entries of the hull: as set, else those ``screening ingest --source mp`` wrote beside
    the structures (``<structures>_references.parquet``), else None (the bundled set)."""
    if settings.references is not None:
        return str(settings.references.resolve())
    beside = settings.structures.resolve()
    beside = beside.with_name(f"{beside.name}_references.parquet")
    return str(beside) if beside.exists() else None


def _count_results(run_dir: Path) -> dict[str, int]:
    try:
        frame = read_results(run_dir, columns=[Col.STATUS, Col.STAGE])
    except FileNotFoundError:
        return {}
    keys = frame[Col.STATUS].where(frame[Col.STATUS] != "failed", "failed:" + frame[Col.STAGE].fillna("?"))
    return {str(k): int(v) for k, v in keys.value_counts().sort_index().items()}


def _hull_references(run_dir: Path) -> list[str]:
    """The distinct hull reference sets the rows were placed on (completion can differ per system)."""
    try:
        frame = read_results(run_dir, columns=[Col.HULL_REFERENCE])
    except FileNotFoundError:
        return []
    return sorted(frame[Col.HULL_REFERENCE].dropna().unique().tolist())


def _loads_by_worker(reports: list[PartitionReport]) -> dict[str, int]:
    loads: dict[str, int] = {}
    for report in reports:
        loads[report.worker] = max(loads.get(report.worker, 0), report.model_loads)
    return loads


def _peak_rss_by_worker(reports: list[PartitionReport]) -> dict[str, float]:
    peaks: dict[str, float] = {}
    for report in reports:
        peaks[report.worker] = round(max(peaks.get(report.worker, 0.0), report.peak_rss_MB), 1)
    return peaks


def _submit_all(
    client: Any,
    info: ClusterInfo,
    settings: RunSettings,
    todo: list[Partition],
    run_id: str,
    results_dir: Path,
) -> tuple[list[PartitionReport], dict[int, str]]:
    from distributed import as_completed
    from tqdm.auto import tqdm

    config = settings.screen_config(run_id)
    structures = str(settings.structures.resolve())
    references = references_path(settings)
    costs = estimated_costs(settings.structures, todo, settings.n_samples)
    futures = {}
    for part, cost in sorted(zip(todo, costs, strict=True), key=lambda pc: -pc[1]):
        future = client.submit(
            run_partition,
            structures,
            part.index,
            part.ids,
            str(results_dir / part.file_name),
            config,
            settings.model,
            info.device,
            references,
            key=f"screen-{run_id}-{part.index:05d}",
            retries=settings.retries,
            resources=info.resources,
            priority=cost,  # heaviest first
            pure=False,
        )
        futures[future] = part
    reports: list[PartitionReport] = []
    errors: dict[int, str] = {}
    n_total = sum(len(p.ids) for p in todo)
    with tqdm(total=n_total, unit="structure", desc="screening", disable=not settings.progress) as bar:
        for future in as_completed(futures):
            part = futures[future]
            try:
                reports.append(future.result())
            except Exception as exc:  # noqa: BLE001 - a partition that failed after its retries
                errors[part.index] = f"{type(exc).__name__}: {exc}"
            bar.update(len(part.ids))
    return reports, errors


def run_screening(settings: RunSettings) -> RunSummary:
    """Screen every structure of ``settings.structures`` into ``settings.out`` (see the module docstring).

    Raises:
        FileNotFoundError / ValueError: the structures dataset is missing, empty or has duplicate ids, or
            the model is unknown.
        RunDirError: ``settings.out`` holds a run with different settings or input.
        pipelines.cluster.ClusterError: the cluster cannot run the work.
    """
    from screening.models import available_models

    if settings.model not in available_models():
        raise ValueError(f"unknown model {settings.model!r}; available: {', '.join(available_models())}")
    start = time.perf_counter()
    run_dir = settings.out.resolve()
    results_dir = run_dir / RESULTS_DIR
    ids = structure_ids(settings.structures)
    fingerprint = ids_fingerprint(ids)
    run_id = compute_run_id(settings, fingerprint)
    previous = read_manifest(run_dir)
    if previous is not None and previous.get("run_id") != run_id:
        raise RunDirError(
            f"{run_dir} holds run {previous.get('run_id')} made with other settings or input "
            f"(this one is {run_id}); choose another --out or delete that directory"
        )
    partitions = plan_partitions(ids, settings.partition_size)
    remove_stale_temporaries(results_dir)
    todo = [p for p in partitions if not (results_dir / p.file_name).exists()]

    manifest = previous or base_manifest(
        run_id,
        settings.model_dump(mode="json"),
        {
            "structures": str(settings.structures.resolve()),
            "n_structures": len(ids),
            "ids_sha256": fingerprint,
        },
    )
    manifest["config"] = settings.model_dump(mode="json")
    manifest["references"] = references_path(settings)
    attempts = manifest.setdefault("attempts", [])
    attempt: dict[str, Any] = {"started": now_iso(), "partitions_todo": len(todo), "status": "running"}
    attempts.append(attempt)
    write_manifest(run_dir, manifest)

    reports: list[PartitionReport] = []
    errors: dict[int, str] = {}
    try:
        if todo:
            with open_client(settings) as (client, info):
                attempt["cluster"] = {"kind": info.kind, "n_workers": info.n_workers, "device": info.device}
                write_manifest(run_dir, manifest)
                reports, errors = _submit_all(client, info, settings, todo, run_id, results_dir)
        attempt["status"] = "failed partitions" if errors else "complete"
    except BaseException as exc:
        attempt["status"] = f"interrupted: {type(exc).__name__}: {exc}"
        raise
    finally:
        wall_time_s = time.perf_counter() - start
        counts = _count_results(run_dir)
        attempt.update(
            {
                "finished": now_iso(),
                "wall_time_s": round(wall_time_s, 3),
                "partitions_done": len(reports),
                "partition_errors": {str(k): v for k, v in errors.items()},
                "structures_screened": sum(r.n_rows for r in reports),
                "partition_seconds": {str(r.index): round(r.seconds, 3) for r in reports},
                # model loads per worker process so far: 1 each when the per-process cache works
                "model_loads_by_worker": _loads_by_worker(reports),
                "peak_rss_MB_by_worker": _peak_rss_by_worker(reports),
            }
        )
        if reports:
            manifest["model"] = reports[0].model
        manifest["hull_reference"] = _hull_references(run_dir)
        manifest["counts"] = counts
        manifest["complete"] = not errors and sum(counts.values()) == len(ids)
        write_manifest(run_dir, manifest)

    return RunSummary(
        run_dir=run_dir,
        run_id=run_id,
        n_structures=len(ids),
        n_partitions=len(partitions),
        n_partitions_skipped=len(partitions) - len(todo),
        counts=counts,
        wall_time_s=wall_time_s,
        n_screened=sum(r.n_rows for r in reports),
        partition_errors=errors,
    )


def summary_dict(summary: RunSummary) -> dict[str, Any]:
    """The summary as JSON-serialisable values."""
    out = asdict(summary)
    out["run_dir"] = str(summary.run_dir)
    out["structures_per_s"] = summary.structures_per_s
    return out
