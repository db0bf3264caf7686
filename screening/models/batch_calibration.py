"""The atom cap of a forward pass, measured per model and device instead of set by a constant.

As batched MLIP engines do, the batch is grown once on the device (a dense oxide, Li2O, repeated: about 64
neighbours per atom at a 5 A cutoff) while the peak memory and the throughput of each size are recorded:

- growth stops at the first out-of-memory error (CUDA), when the next size's predicted peak would pass the
  memory limit, when throughput has fallen below :data:`THROUGHPUT_STOP` of the best size's (a CPU: larger
  batches only get slower there), after a pass longer than :data:`LONGEST_PASS_S`, or at
  :data:`LARGEST_ATOMS`;
- the peak is fitted as ``fixed_bytes + bytes_per_atom * atoms`` (CUDA: ``max_memory_allocated``; CPU: the
  largest growth of the process's resident memory during the pass, sampled every millisecond);
- the result is remembered in a JSON file (one entry per model, device and torch version; the folder is
  ``$SCREENING_CACHE_DIR`` or ``~/.cache/screening``), so a machine measures once; concurrent workers take
  turns through a lock file.

The cap (:meth:`BatchCalibration.max_atoms_per_batch`) is the memory cap with a margin
(:data:`MEMORY_MARGIN` of the limit the caller passes: the free device memory, or the Dask worker's memory
limit on a CPU), unless a smaller measured size had clearly better throughput (:data:`THROUGHPUT_KEEP`),
as on CPUs; then that size.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from screening.io import write_text_atomic

_LOG = logging.getLogger(__name__)

#: Fraction of the memory limit a batch may use.
MEMORY_MARGIN = 0.7
#: Growth stops once a size's throughput is below this fraction of the best so far.
THROUGHPUT_STOP = 0.8
#: A size within this fraction of the best throughput counts as just as fast.
THROUGHPUT_KEEP = 0.95
#: First and largest sizes tried (atoms), the batch doubling in between.
SMALLEST_ATOMS = 96
LARGEST_ATOMS = 1 << 17
#: Growth also stops after a pass this long (s): per-pass overheads are long amortised there, and a CPU
#: with flat throughput would otherwise spend minutes measuring.
LONGEST_PASS_S = 2.0
#: Timed passes per size (the fastest counts).
REPEATS = 2
#: Format of the remembered file; entries of another version are measured again.
CALIBRATION_VERSION = 1

_RSS_SAMPLE_S = 0.001


@dataclass(frozen=True)
class BatchCalibration:
    """What growing the batch measured on one device.

    Attributes:
        key: model, device and torch version the measurement belongs to.
        sizes_atoms: batch sizes tried, increasing.
        peak_bytes: peak memory of each (beyond what was in use before the pass).
        atoms_per_s: throughput of each.
        out_of_memory_atoms: the size that ran out of device memory, else None.
        fixed_bytes: intercept of the linear memory fit.
        bytes_per_atom: slope of the linear memory fit.
    """

    key: str
    sizes_atoms: tuple[int, ...]
    peak_bytes: tuple[int, ...]
    atoms_per_s: tuple[float, ...]
    out_of_memory_atoms: int | None
    fixed_bytes: float
    bytes_per_atom: float

    def memory_cap_atoms(self, limit_bytes: float) -> int:
        """The largest batch whose predicted peak stays within :data:`MEMORY_MARGIN` of ``limit_bytes``."""
        cap = (MEMORY_MARGIN * limit_bytes - max(self.fixed_bytes, 0.0)) / max(self.bytes_per_atom, 1.0)
        if self.out_of_memory_atoms is not None:
            cap = min(cap, MEMORY_MARGIN * self.out_of_memory_atoms)
        return max(1, int(cap))

    def max_atoms_per_batch(self, limit_bytes: float) -> int:
        """The atom cap per forward pass under a memory limit (see the module docstring)."""
        best = max(self.atoms_per_s)
        fastest = self.sizes_atoms[int(np.argmax(self.atoms_per_s))]
        if self.atoms_per_s[-1] < THROUGHPUT_KEEP * best:  # bigger batches got slower: keep the fastest
            return min(fastest, self.memory_cap_atoms(limit_bytes))
        return self.memory_cap_atoms(limit_bytes)


def cache_directory() -> Path:
    """Where measurements are remembered: ``$SCREENING_CACHE_DIR`` or ``~/.cache/screening``."""
    return Path(os.environ.get("SCREENING_CACHE_DIR") or Path.home() / ".cache" / "screening")


def device_description(device: torch.device) -> str:
    """The hardware a measurement holds for: the GPU's name, or the CPU with the torch thread count."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()} threads"


def calibration_key(model_name: str, device: torch.device) -> str:
    return f"{model_name}|{device_description(device)}|torch {torch.__version__}"


def memory_limit_bytes(device: torch.device) -> int:
    """The memory a batch may use on ``device``: free CUDA memory (with what torch has cached), else the
    Dask worker's memory limit or, outside a worker, the machine's available memory, less what this
    process already holds."""
    import psutil

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    process = psutil.Process().memory_info().rss
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        limit = None
    if not limit:
        return int(psutil.virtual_memory().available)
    return max(0, int(limit) - process)


def reference_cell():
    """The calibration's unit of work: antifluorite Li2O, 2x2x2 conventional cells (96 atoms)."""
    from pymatgen.core import Lattice, Structure

    cell = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]]
    )
    cell.make_supercell([2, 2, 2])
    return cell


def _peak_cpu_bytes(run: Callable[[], object]) -> int:
    """The largest growth of resident memory while ``run`` executes (sampled every millisecond)."""
    import psutil

    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(_RSS_SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run()
    finally:
        done.set()
        sampler.join()
    peak[0] = max(peak[0], process.memory_info().rss)
    return peak[0] - before


def _peak_cuda_bytes(run: Callable[[], object], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def _fit(sizes: Sequence[int], peaks: Sequence[int]) -> tuple[float, float]:
    """``(fixed_bytes, bytes_per_atom)`` of a least-squares line (through the origin for one point)."""
    if len(sizes) < 2:
        return 0.0, peaks[0] / sizes[0]
    slope, intercept = np.polyfit(np.asarray(sizes, float), np.asarray(peaks, float), 1)
    if slope <= 0:  # memory did not grow measurably: the largest point alone, through the origin
        return 0.0, max(peaks) / max(sizes)
    return float(intercept), float(slope)


def measure(model: Any, limit_bytes: float) -> BatchCalibration:
    """Grow the batch on ``model``'s device (an ``EnergyModel``; typed loosely because the model asks this
    module for its cap) and record memory and throughput (see the module docstring)."""
    device = model.device
    sizes: list[int] = []
    peaks: list[int] = []
    rates: list[float] = []
    out_of_memory = None
    cell = reference_cell()
    prepared = model._prepare(cell, model._validate(cell, meanfield=False), meanfield=False)
    model._forward([prepared], meanfield=False)  # warm-up: kernels, allocator
    copies = max(1, SMALLEST_ATOMS // len(cell))
    while copies * len(cell) <= LARGEST_ATOMS:
        batch = [prepared] * copies
        atoms = len(cell) * copies
        if sizes:
            fixed, per_atom = _fit(sizes, peaks)
            if fixed + per_atom * atoms > limit_bytes:
                break
        seconds = []
        try:
            for _ in range(REPEATS):  # the faster of two passes: shared CPUs are noisy
                start = time.perf_counter()
                if device.type == "cuda":
                    peak = _peak_cuda_bytes(
                        lambda batch=batch: model._forward(batch, meanfield=False), device
                    )
                else:
                    peak = _peak_cpu_bytes(lambda batch=batch: model._forward(batch, meanfield=False))
                seconds.append(time.perf_counter() - start)
        except torch.cuda.OutOfMemoryError:
            out_of_memory = atoms
            torch.cuda.empty_cache()
            break
        rate = atoms / min(seconds)
        sizes.append(atoms)
        peaks.append(max(peak, 1))
        rates.append(rate)
        _LOG.info(
            "batch calibration %s: %d atoms, %.0f MiB, %.0f atoms/s", model.name, atoms, peak / 2**20, rate
        )
        if rate < THROUGHPUT_STOP * max(rates) or min(seconds) > LONGEST_PASS_S:
            break
        copies *= 2
    fixed, per_atom = _fit(sizes, peaks)
    return BatchCalibration(
        calibration_key(model.name, device),
        tuple(sizes),
        tuple(peaks),
        tuple(rates),
        out_of_memory,
        fixed,
        per_atom,
    )


def calibration_file() -> Path:
    """The JSON file of remembered measurements."""
    return cache_directory() / "batch-calibration.json"


def remembered_calibrations() -> dict[str, BatchCalibration]:
    """Every measurement remembered on this machine (of the current format), keyed by
    :func:`calibration_key`."""
    path = calibration_file()
    remembered = json.loads(path.read_text()) if path.is_file() else {}
    return {
        key: BatchCalibration(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in entry.items() if k != "version"}
        )
        for key, entry in remembered.items()
        if entry.get("version") == CALIBRATION_VERSION
    }


def calibration_for(model: Any, limit_bytes: float | None = None) -> BatchCalibration:
    """The remembered measurement for the model's device, measuring it (once per machine) if absent."""
    key = calibration_key(model.name, model.device)
    path = calibration_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # workers of one machine measure one at a time, then read
        remembered = remembered_calibrations()
        if key in remembered:
            return remembered[key]
        _LOG.warning(
            "measuring the batch size of %s on %s (once per machine)",
            model.name,
            device_description(model.device),
        )
        calibration = measure(
            model, limit_bytes if limit_bytes is not None else memory_limit_bytes(model.device)
        )
        remembered[key] = calibration
        entries = {k: {"version": CALIBRATION_VERSION, **asdict(v)} for k, v in remembered.items()}
        write_text_atomic(json.dumps(entries, indent=1, sort_keys=True), path)
        return calibration
