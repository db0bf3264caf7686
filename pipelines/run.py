"""A screening run: partitions of the structures table screened on Dask workers, results written per
partition into the run directory (:mod:`pipelines.rundir`), resumable, retried, with progress, a summary
and ``run.json``.

A rerun with the same settings reuses every partition whose input is unchanged and recomputes exactly
those whose structures changed; a run directory holding results computed under other settings is
refused rather than mixed. One run at a time writes a run directory (its lock).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.cluster import ClusterInfo, open_client
from pipelines.manifest import base_manifest, now_iso
from pipelines.partitions import (
    Partition,
    estimated_costs,
    partition_inputs_sha256,
    plan_partitions,
    structure_ids,
)
from pipelines.rundir import PartitionIdentity, RunDir, RunDirError
from pipelines.settings import RunSettings
from pipelines.worker import PartitionReport, run_partition
from screening.errors import InputError, MissingInputError
from screening.schema import Col
from screening.thermo.model_error import model_error

__all__ = ["RunDirError", "RunSummary", "run_screening"]


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
    n_partitions_stale: int = 0
    ignored_files: list[str] = field(default_factory=list)

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
            f"({self.n_partitions_skipped} already done, {self.n_partitions_stale} recomputed: input changed)",
            f"  ok: {self.counts.get('ok', 0)}   not applicable: {self.counts.get('not applicable', 0)}   "
            f"failed: {sum(failed.values())}"
            + (" (" + ", ".join(f"{stage}: {n}" for stage, n in failed.items()) + ")" if failed else ""),
            f"  wall time: {self.wall_time_s:.1f} s   throughput: {self.structures_per_s:.2f} structures/s "
            f"({self.n_screened} screened now)",
        ]
        for index, error in sorted(self.partition_errors.items()):
            lines.append(f"  partition {index} not done: {error}")
        for path in self.ignored_files:
            lines.append(f"  ignored (not written by this run): {path}")
        return "\n".join(lines)


def references_path(settings: RunSettings) -> str | None:
    """The reference entries of the hull: as set, else those ``screening ingest --source mp`` wrote beside
    the structures (``<structures>_references.parquet``), else None (the set shipped with pymatgen)."""
    if settings.references is not None:
        return str(settings.references.resolve())
    beside = settings.structures.resolve()
    beside = beside.with_name(f"{beside.name}_references.parquet")
    return str(beside) if beside.exists() else None


def references_sha256(path: str | None) -> str:
    """Hash of the hull reference entries (the file's bytes, or the pymatgen release that ships them)."""
    if path is None:
        from importlib.metadata import version

        return f"pymatgen-calc_compounds@{version('pymatgen')}"
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise MissingInputError(f"hull references {path} cannot be read: {exc}") from exc
    return digest.hexdigest()


def conductivity_model(settings: RunSettings) -> dict[str, Any] | None:
    """The learned conductivity model of a ``learned`` run (name, folder, weights hash), else None."""
    if settings.science.transport_method != "learned":
        return None
    from screening.transport.learned import conductivity_model_identity

    return conductivity_model_identity(settings.science.conductivity_model)


def native_model(settings: RunSettings) -> dict[str, Any] | None:
    """The occupancy-native ensemble of a ``native``/``auto`` run (name, folder, weights hash, teacher,
    threshold), else None."""
    if settings.science.disorder not in ("native", "auto"):
        return None
    from screening.models.native_energy import native_model_identity

    identity = native_model_identity(settings.science.native_model)
    if identity["teacher"] != settings.science.model:
        raise InputError(
            f"native model {settings.science.native_model} was distilled from {identity['teacher']}, not from "
            f"the run's model {settings.science.model}; train one with `screening train energy --teacher "
            f"{settings.science.model}`"
        )
    return identity


def config_sha256(settings: RunSettings, references_digest: str) -> str:
    """Identity of what produces a run's numbers: result-defining settings, hull references and the
    weights of a learned conductivity model and of a native energy ensemble."""
    learned = conductivity_model(settings)
    native = native_model(settings)
    payload = json.dumps(
        {
            "settings": settings.result_defining(),
            "references": references_digest,
            **({"conductivity_model_sha256": learned["weights_sha256"]} if learned else {}),
            **({"native_model_sha256": native["weights_sha256"]} if native else {}),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _outcomes(run_dir: RunDir, plan: list[int]) -> tuple[dict[str, int], list[str]]:
    """Rows by outcome (``ok``, ``not applicable``, ``failed:<stage>``) and the distinct hull reference
    sets the rows were placed on (completion can differ per system), from one read of the results."""
    try:
        frame = run_dir.read_results(columns=[Col.STATUS, Col.STAGE, Col.HULL_REFERENCE], partitions=plan)
    except FileNotFoundError:
        return {}, []
    keys = frame[Col.STATUS].where(frame[Col.STATUS] != "failed", "failed:" + frame[Col.STAGE].fillna("?"))
    counts = {str(k): int(v) for k, v in keys.value_counts().sort_index().items()}
    return counts, sorted(frame[Col.HULL_REFERENCE].dropna().unique().tolist())


def _stage_seconds(reports: list[PartitionReport]) -> dict[str, float]:
    """Busy seconds per stage summed over the partitions of this attempt (where the time goes)."""
    total: dict[str, float] = {}
    for report in reports:
        for stage, seconds in report.stage_seconds.items():
            total[stage] = total.get(stage, 0.0) + seconds
    return {stage: round(seconds, 3) for stage, seconds in sorted(total.items(), key=lambda kv: -kv[1])}


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
    todo: list[tuple[Partition, PartitionIdentity]],
    run_id: str,
    run_dir: RunDir,
    references: str | None,
) -> tuple[list[PartitionReport], dict[int, str]]:
    from distributed import as_completed
    from tqdm.auto import tqdm

    config = settings.science.model_copy(update={"device": info.device})
    structures = str(settings.structures.resolve())
    costs = estimated_costs(settings.structures, [part for part, _ in todo], settings.science.n_samples)
    futures = {}
    for (part, identity), cost in sorted(zip(todo, costs, strict=True), key=lambda pc: -pc[1]):
        future = client.submit(
            run_partition,
            structures,
            part.index,
            part.ids,
            str(run_dir.path),
            identity,
            config,
            references,
            run_id,
            settings.max_sites_per_structure,
            key=f"screen-{run_id}-{part.index:05d}-{identity.inputs_sha256[:8]}",
            retries=settings.retries,
            resources=info.resources,
            priority=cost,  # heaviest first
            pure=False,
        )
        futures[future] = part
    reports: list[PartitionReport] = []
    errors: dict[int, str] = {}
    n_total = sum(len(p.ids) for p, _ in todo)
    with tqdm(total=n_total, unit="structure", desc="screening", disable=not settings.progress) as bar:
        for future in as_completed(futures):
            part = futures[future]
            try:
                reports.append(future.result())
            except Exception as exc:  # noqa: BLE001 - a partition that failed after its retries
                errors[part.index] = f"{type(exc).__name__}: {exc}"
            bar.update(len(part.ids))
    return reports, errors


def _refuse_other_settings(
    run_dir: RunDir, previous: dict[str, Any] | None, found: dict, config_hash: str
) -> None:
    others = sorted(i for i, identity in found.items() if identity.config_sha256 != config_hash)
    if others or (previous is not None and previous.get("config_sha256", config_hash) != config_hash):
        where = f"partitions {others[:5]} of {run_dir.results_dir}" if others else str(run_dir.manifest_path)
        raise RunDirError(
            f"{run_dir.path} holds results computed under other settings ({where}); nothing was mixed: "
            "choose another --out, or move that directory away to start afresh"
        )


def run_screening(settings: RunSettings) -> RunSummary:
    """Screen every structure of ``settings.structures`` into ``settings.out`` (see the module docstring).

    Raises:
        FileNotFoundError / ValueError: the structures dataset is missing, empty or has duplicate ids.
        RunDirError: ``settings.out`` holds results computed under other settings.
        pipelines.rundir.RunDirLocked: another run is writing ``settings.out``.
        pipelines.cluster.ClusterError: the cluster cannot run the work.
    """
    start = time.perf_counter()
    run_dir = RunDir(settings.out)
    ids = structure_ids(settings.structures)
    partitions = plan_partitions(ids, settings.partition_size)
    references = references_path(settings)
    references_digest = references_sha256(references)
    config_hash = config_sha256(settings, references_digest)
    run_id = config_hash[:16]
    inputs = partition_inputs_sha256(settings.structures, partitions)
    plan = [part.index for part in partitions]

    with run_dir.lock(settings.lock_wait_s):
        previous = run_dir.read_manifest()
        found, foreign = run_dir.scan_results()
        _refuse_other_settings(run_dir, previous, found, config_hash)
        identities = [PartitionIdentity(config_hash, digest) for digest in inputs]
        todo = [
            (p, ident) for p, ident in zip(partitions, identities, strict=True) if found.get(p.index) != ident
        ]
        n_stale = sum(1 for p, _ in todo if p.index in found)
        ignored = [str(path) for path in foreign] + [
            str(run_dir.results_file(i)) for i in sorted(found) if i >= len(partitions)
        ]

        manifest = previous or base_manifest(run_id)
        manifest.update(
            {
                "run_id": run_id,
                "config_sha256": config_hash,
                "config": settings.model_dump(mode="json"),
                "science": settings.science.as_dict(),
                "input": {
                    "structures": str(settings.structures.resolve()),
                    "n_structures": len(ids),
                    "inputs_sha256": hashlib.sha256("".join(inputs).encode()).hexdigest(),
                },
                "partitions": {str(p.index): digest for p, digest in zip(partitions, inputs, strict=True)},
                "references": references,
                "references_sha256": references_digest,
                "conductivity_model": conductivity_model(settings),
                "native_model": native_model(settings),
                # the model's error scale included in e_above_hull_std_eV (screening.thermo.model_error)
                "e_above_hull_model_error": model_error(settings.science.model).as_dict(),
            }
        )
        attempts = manifest.setdefault("attempts", [])
        attempt: dict[str, Any] = {
            "started": now_iso(),
            "partitions_todo": len(todo),
            "partitions_stale": n_stale,
            "ignored_files": ignored,
            "status": "running",
        }
        attempts.append(attempt)
        run_dir.write_manifest(manifest)

        reports: list[PartitionReport] = []
        errors: dict[int, str] = {}
        try:
            if todo:
                with open_client(settings) as (client, info):
                    attempt["cluster"] = {
                        "kind": info.kind,
                        "n_workers": info.n_workers,
                        "device": info.device,
                        "seconds_to_workers": round(info.seconds_to_workers, 3),
                    }
                    if info.slurm_job_ids:
                        attempt["cluster"]["slurm_job_ids"] = list(info.slurm_job_ids)
                    run_dir.write_manifest(manifest)
                    reports, errors = _submit_all(client, info, settings, todo, run_id, run_dir, references)
            attempt["status"] = "failed partitions" if errors else "complete"
        except BaseException as exc:
            attempt["status"] = f"interrupted: {type(exc).__name__}: {exc}"
            raise
        finally:
            wall_time_s = time.perf_counter() - start
            counts, hull_references = _outcomes(run_dir, plan)
            attempt.update(
                {
                    "finished": now_iso(),
                    "wall_time_s": round(wall_time_s, 3),
                    "partitions_done": len(reports),
                    "partition_errors": {str(k): v for k, v in errors.items()},
                    "structures_screened": sum(r.n_rows for r in reports),
                    "partition_seconds": {str(r.index): round(r.seconds, 3) for r in reports},
                    "stage_seconds": _stage_seconds(reports),
                    "atoms_evaluated": sum(r.atoms_evaluated for r in reports),
                    # model loads per worker process so far: 1 each when the per-process cache works
                    "model_loads_by_worker": _loads_by_worker(reports),
                    "peak_rss_MB_by_worker": _peak_rss_by_worker(reports),
                }
            )
            if reports:
                manifest["model"] = reports[0].model
            manifest["hull_reference"] = hull_references
            manifest["counts"] = counts
            manifest["complete"] = not errors and sum(counts.values()) == len(ids)
            run_dir.write_manifest(manifest)

    return RunSummary(
        run_dir=run_dir.path,
        run_id=run_id,
        n_structures=len(ids),
        n_partitions=len(partitions),
        n_partitions_skipped=len(partitions) - len(todo),
        counts=counts,
        wall_time_s=wall_time_s,
        n_screened=sum(r.n_rows for r in reports),
        partition_errors=errors,
        n_partitions_stale=n_stale,
        ignored_files=ignored,
    )


def summary_dict(summary: RunSummary) -> dict[str, Any]:
    """The summary as JSON-serialisable values."""
    out = asdict(summary)
    out["run_dir"] = str(summary.run_dir)
    out["structures_per_s"] = summary.structures_per_s
    return out
