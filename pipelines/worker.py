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


#: glibc ``mallopt`` parameters and the values restored (the largest of glibc's own dynamic mmap threshold,
#: and a trim threshold that returns memory once 64 MiB are free at the top of the heap).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
_TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024


def restore_malloc_defaults() -> bool:
    """Undo the Dask nanny's ``MALLOC_TRIM_THRESHOLD_=65536`` in this process (glibc only).

    Setting that variable also switches off glibc's dynamic mmap threshold, so every allocation above 128
    KiB becomes an ``mmap``/``munmap`` pair with fresh page faults; torch and numpy allocate such
    temporaries all the time. Measured on the screening of 29 structures in one process: 8.4 s with the
    nanny's setting, 5.7 s with it and this call, 5.7 s without either. Returns whether it applied.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or os.environ.get("MALLOC_TRIM_THRESHOLD_") is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
            and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
        )
    except (OSError, AttributeError):  # not glibc: nothing to undo
        return False


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
    stage_seconds: dict[str, float] = field(default_factory=dict)
    atoms_evaluated: int = 0


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
    stage_seconds: dict[str, float] = {"load model and hull": time.perf_counter() - start}
    atoms_before = model.atoms_evaluated
    clock = time.perf_counter()
    structures = read_partition(structures_path, ids)
    stage_seconds["read"] = time.perf_counter() - clock
    results = screen_partition(
        structures,
        config,
        model,
        references=reference_set,
        run_id=run_id,
        max_sites=max_sites,
        stage_seconds=stage_seconds,
    )
    clock = time.perf_counter()
    RunDir(run_dir).write_partition(index, results_table(results), identity)
    stage_seconds["write"] = time.perf_counter() - clock
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
        stage_seconds={stage: round(seconds, 4) for stage, seconds in stage_seconds.items()},
        atoms_evaluated=model.atoms_evaluated - atoms_before,
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


def label_parents(
    structures: list[Any], ids: list[str], teacher: str, device: str | None, n_samples: int, seed: int
) -> list[dict[str, Any]]:
    """Teacher label rows of a chunk of parent structures (``screening train energy``)."""
    from screening.models.distillation import teacher_labels

    return teacher_labels(cached_model(teacher, device), structures, ids, n_samples=n_samples, seed=seed)
