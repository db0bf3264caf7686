"""The atom cap per forward pass is measured (grown once, remembered, with a margin), not a constant."""

from __future__ import annotations

import json
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from screening.models import batch_calibration
from screening.models.base import EnergyModel
from screening.models.batch_calibration import (
    MEMORY_MARGIN,
    BatchCalibration,
    calibration_for,
    measure,
)

MiB = 1 << 20


_CLOCK = types.SimpleNamespace(now=0.0)


class _Backend(EnergyModel):
    """A backend whose forward pass holds ``bytes_per_atom`` per atom and takes ``seconds(atoms)``."""

    training_energies_corrected = False

    def __init__(self, name: str, bytes_per_atom: int, seconds=lambda atoms: 1e-4 * atoms) -> None:
        self.name = name
        self.device = torch.device("cpu")
        self.weights_path = Path(__file__)
        self.cutoff_A = 5.0
        self.supported_elements = frozenset({"Li", "O"})
        self.bytes_per_atom = bytes_per_atom
        self.seconds = seconds
        self.passes: list[int] = []

    def _prepare(self, structure, neighbors, *, meanfield):
        return len(structure)

    def _forward(self, prepared, *, meanfield):
        atoms = sum(prepared)
        self.passes.append(atoms)
        held = np.ones(atoms * self.bytes_per_atom // 8)  # touched, so resident
        _CLOCK.now += self.seconds(atoms)  # throughput on a virtual clock: exact, not at the machine's mercy
        return np.full(len(prepared), float(held[0]))

    def ase_calculator(self):
        raise NotImplementedError


@pytest.fixture(autouse=True)
def _private_cache_and_virtual_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "cache"))
    clock = types.SimpleNamespace(perf_counter=lambda: _CLOCK.now, sleep=time.sleep)
    monkeypatch.setattr(batch_calibration, "time", clock)


def test_growth_stops_before_the_memory_limit_and_the_fit_finds_the_bytes_per_atom():
    backend = _Backend("fake-memory", bytes_per_atom=64 * 1024)  # 6 MiB per 96 atoms
    limit = 400 * MiB
    calibration = measure(backend, limit)
    assert calibration.sizes_atoms[0] == 96 and len(calibration.sizes_atoms) >= 3
    assert max(calibration.sizes_atoms) * backend.bytes_per_atom <= limit  # never ran past the limit
    assert calibration.bytes_per_atom == pytest.approx(backend.bytes_per_atom, rel=0.25)
    cap = calibration.max_atoms_per_batch(limit)
    assert cap * backend.bytes_per_atom <= MEMORY_MARGIN * limit * 1.3  # the margin, to the fit's accuracy
    assert cap > 0.5 * MEMORY_MARGIN * limit / backend.bytes_per_atom


def test_a_device_where_bigger_batches_get_slower_keeps_the_fastest_size():
    """CPU-like: time per atom grows with the batch (memory-bound), so the cap is the fastest size."""
    backend = _Backend("fake-cpu", bytes_per_atom=1024, seconds=lambda atoms: 1e-6 * atoms**2)
    calibration = measure(backend, 64 * 1024 * MiB)
    assert calibration.max_atoms_per_batch(64 * 1024 * MiB) == 96
    assert len(calibration.sizes_atoms) <= 3  # stopped growing once throughput fell


def test_a_device_with_flat_throughput_uses_its_memory():
    backend = _Backend("fake-gpu", bytes_per_atom=4096)
    calibration = measure(backend, 32 * MiB)
    assert calibration.max_atoms_per_batch(32 * MiB) > 1000


def test_the_measurement_is_remembered_per_model_and_device(tmp_path):
    backend = _Backend("fake-remembered", bytes_per_atom=4096)
    first = calibration_for(backend, 32 * MiB)
    passes = len(backend.passes)
    second = calibration_for(backend, 32 * MiB)
    assert second == first and len(backend.passes) == passes  # read back, not measured again
    remembered = json.loads((tmp_path / "cache" / "batch-calibration.json").read_text())
    assert list(remembered) == [first.key] and "fake-remembered|cpu:" in first.key
    other = _Backend("fake-other", bytes_per_atom=4096)
    calibration_for(other, 32 * MiB)
    assert len(json.loads((tmp_path / "cache" / "batch-calibration.json").read_text())) == 2


def test_an_out_of_memory_error_ends_growth_and_bounds_the_cap(monkeypatch):
    class _Small(_Backend):
        def _forward(self, prepared, *, meanfield):
            if sum(prepared) > 400:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
            return super()._forward(prepared, meanfield=meanfield)

    calibration = measure(_Small("fake-oom", bytes_per_atom=1024), 1 << 40)
    assert calibration.out_of_memory_atoms == 768
    assert calibration.max_atoms_per_batch(1 << 40) == int(MEMORY_MARGIN * 768)


def test_the_model_asks_for_its_cap_once_and_batches_by_it(monkeypatch):
    backend = _Backend("fake-cap", bytes_per_atom=1024)
    calls = []
    fixed = BatchCalibration("k", (96,), (MiB,), (1.0,), None, 0.0, 1.0)
    monkeypatch.setattr(batch_calibration, "calibration_for", lambda model, limit: calls.append(1) or fixed)
    monkeypatch.setattr(batch_calibration, "memory_limit_bytes", lambda device: 200)
    assert backend.default_max_atoms_per_batch() == int(MEMORY_MARGIN * 200)
    assert backend.default_max_atoms_per_batch() == int(MEMORY_MARGIN * 200) and len(calls) == 1
