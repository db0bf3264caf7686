"""What runs on a Dask worker: per-process caches of the model and the hull, and the partition task.

A worker process loads each model (and each reference set) once, on its first partition, and keeps it
for every later partition; with one thread per worker there is no concurrent loading to guard against,
and a lock covers the multi-threaded case.
"""

from __future__ import annotations

import os
import resource
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pipelines.partitions import read_partition, results_table
from pipelines.rundir import PartitionIdentity, RunDir
from screening.config import ScienceConfig
from screening.schema import Col
from screening.stages import screen_partition

_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str | None], Any] = {}
_REFERENCES: dict[str | None, Any] = {}
_LOADS: dict[str, int] = {"model": 0, "references": 0}


def cached_model(name: str, device: str | None) -> Any:
    """The ``EnergyModel`` called ``name`` on ``device``, loaded on first use in this process."""
    key = (name, device)
    with _LOCK:
        if key not in _MODELS:
            from screening.models import load_model

            _MODELS[key] = load_model(name, device=device)
            _LOADS["model"] += 1
        return _MODELS[key]


def cached_references(references: str | None) -> Any:
    """The hull ``ReferenceSet`` (``None``: the bundled one), loaded on first use in this process."""
    with _LOCK:
        if references not in _REFERENCES:
            from screening.thermo import load_reference_entries

            _REFERENCES[references] = load_reference_entries(references)
            _LOADS["references"] += 1
        return _REFERENCES[references]


def load_counts() -> dict[str, int]:
    """How many times this process has loaded a model and a reference set."""
    return dict(_LOADS)


def set_torch_threads(n_threads: int) -> None:
    """Limit torch's intra-op threads in this process (one core per worker on a LocalCluster)."""
    import torch

    torch.set_num_threads(max(1, int(n_threads)))


@dataclass
class PartitionReport:
    """What a partition task sends back to the driver (small: counts, not rows)."""

    index: int
    n_rows: int
    counts: dict[str, int]
    seconds: float
    worker: str
    model: dict[str, Any] = field(default_factory=dict)
    model_loads: int = 0
    peak_rss_MB: float = 0.0


def count_outcomes(statuses: list[str], stages: list[str | None]) -> dict[str, int]:
    """Counts keyed ``ok``, ``not applicable``, ``failed:<stage>``."""
    counts: dict[str, int] = {}
    for status, stage in zip(statuses, stages, strict=True):
        key = status if status != "failed" else f"failed:{stage}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def run_partition(
    structures_path: str,
    index: int,
    ids: tuple[str, ...],
    run_dir: str,
    identity: PartitionIdentity,
    config: ScienceConfig,
    references: str | None,
    run_id: str,
    max_sites: int | None = None,
) -> PartitionReport:
    """Read one partition, screen it, write its results atomically into the run directory."""
    start = time.perf_counter()
    model = cached_model(config.model, config.device)
    reference_set = cached_references(references)
    structures = read_partition(structures_path, ids)
    results = screen_partition(
        structures, config, model, references=reference_set, run_id=run_id, max_sites=max_sites
    )
    RunDir(run_dir).write_partition(index, results_table(results), identity)
    return PartitionReport(
        index=index,
        n_rows=len(results),
        counts=count_outcomes(results[Col.STATUS].tolist(), results[Col.STAGE].tolist()),
        seconds=time.perf_counter() - start,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        model={
            "name": model.name,
            "device": str(model.device),
            "weights_sha256": model.weights_sha256,
            "training_energies_corrected": model.training_energies_corrected,
        },
        model_loads=_LOADS["model"],
        peak_rss_MB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
    )


def feature_partition(
    structures_path: str, ids: tuple[str, ...], config: ScienceConfig, max_sites: int | None = None
) -> Any:
    """Read one partition and compute its conductivity features (training of the learned model)."""
    from screening.stages import conductivity_features_partition

    model = cached_model(config.model, config.device)
    return conductivity_features_partition(
        read_partition(structures_path, ids), config, model, max_sites=max_sites
    )
