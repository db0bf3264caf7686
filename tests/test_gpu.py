"""What only a GPU can check: the fast tensor-product kernels, graph prefetch and the BVSE array code on
CUDA agree with the plain CPU paths. Skipped, with the reason, where no CUDA device is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from screening.schema import STATUS_OK, Col
from screening.sources.bundled import iter_bundled_rows
from screening.structures import row_to_structure

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _ordered_bundled(limit: int = 12):
    rows = [r for r in iter_bundled_rows() if r[Col.STATUS] == STATUS_OK and r[Col.IS_ORDERED]]
    return [row_to_structure(r) for r in rows[:limit]]


def test_fast_kernels_agree_with_the_plain_path_within_1e_5_eV_per_atom():
    from screening.models._sevennet import SevenNetModel, available_accelerator

    device = torch.device("cuda")
    accelerator = available_accelerator(device)
    if accelerator == "e3nn":
        pytest.skip("neither cuEquivariance nor FlashTP is installed")
    structures = _ordered_bundled()
    fast = SevenNetModel("sevennet-0", device, accelerator=accelerator).predict_energy_per_atom(structures)
    plain = SevenNetModel("sevennet-0", device, accelerator="e3nn").predict_energy_per_atom(structures)
    np.testing.assert_allclose(fast, plain, atol=1e-5, rtol=0)


def test_prefetched_gpu_energies_equal_the_cpu_ones():
    from screening.models import load_model

    structures = _ordered_bundled()
    gpu = load_model("sevennet-0", device="cuda")
    assert gpu.prefetch_graphs
    cpu = load_model("sevennet-0", device="cpu")
    np.testing.assert_allclose(
        gpu.predict_energy_per_atom(structures, max_atoms_per_batch=64),
        cpu.predict_energy_per_atom(structures, max_atoms_per_batch=64),
        atol=1e-4,
        rtol=0,
    )


def test_bvse_landscape_on_the_gpu_equals_the_cpu_one():
    from screening.transport.landscape import bvse_landscape
    from screening.transport.oxidation import assign_oxidation_states

    for structure in _ordered_bundled(6):
        if "Li" not in {e.symbol for e in structure.composition.elements}:
            continue
        decorated = assign_oxidation_states(structure).structure
        cpu = bvse_landscape(decorated, "Li", 1, grid_spacing_A=0.3)
        gpu = bvse_landscape(decorated, "Li", 1, grid_spacing_A=0.3, device="cuda")
        np.testing.assert_allclose(gpu, cpu, atol=1e-9, rtol=0)
