"""A 0.1 A coordinate error must not move a barrier: Gaussian noise of 0.01 in fractional coordinates
(applied to the asymmetric unit, so the space group is kept, as OBELiX does), then the framework
relaxation with the run's potential; the barrier stays within 0.05 eV of the clean structure's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from screening.bundled_records import BundledEntry, load_bundled_entries
from screening.schema import Col
from screening.transport import compute_transport

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

NOISE_FRAC = 0.01


def _on_special_position(ops, clean: np.ndarray, shaken: np.ndarray) -> np.ndarray:
    """``shaken`` projected onto the free coordinates of ``clean``'s Wyckoff position: the mean of its
    images under the site-symmetry group of ``clean`` (so the space group is kept)."""
    stabilizer = []
    for op in ops:
        image = op.operate(clean)
        if np.allclose(image - np.rint(image - clean), clean, atol=1e-4):
            stabilizer.append(op)
    images = []
    for op in stabilizer:
        image = op.operate(shaken)
        images.append(image - np.rint(image - shaken))
    return np.mean(images, axis=0)


def noisy(entry: BundledEntry, seed: int) -> BundledEntry:
    """Gaussian noise of NOISE_FRAC on every free coordinate of the asymmetric unit (OBELiX's recipe)."""
    from pymatgen.symmetry.groups import SpaceGroup

    rng = np.random.default_rng(seed)
    try:
        group = SpaceGroup.from_int_number(int(entry.spacegroup))
    except ValueError:
        group = SpaceGroup(str(entry.spacegroup))
    ops = group.symmetry_ops
    sites = []
    for site in entry.sites:
        clean = np.asarray(site.coords, dtype=float)
        shaken = _on_special_position(ops, clean, clean + rng.normal(0, NOISE_FRAC, 3))
        sites.append(dataclasses.replace(site, coords=tuple(float(x) for x in shaken)))
    return dataclasses.replace(entry, sites=tuple(sites))


@pytest.fixture(scope="module")
def model():
    from screening.models import load_model

    return load_model("sevennet-0", device="cpu")


@pytest.mark.parametrize("name", ["lithium cobalt oxide", "lithium iron phosphate", "argyrodite Li6PS5Cl"])
def test_noise_does_not_move_the_barrier_after_cleanup(model, name):
    entry = next(e for e in load_bundled_entries() if e.name.startswith(name))
    clean, shaken = entry.structure(), noisy(entry, seed=1).structure()  # from_spacegroup: symmetry kept
    assert len(clean) == len(shaken)
    options = {"temperature_K": 300.0, "energy_model": model, "frenkel_method": "bvse"}
    raw = compute_transport(shaken, **options)[Col.EA_MIGRATION]
    reference = compute_transport(clean, coordinate_cleanup="relax", **options)
    cleaned = compute_transport(shaken, coordinate_cleanup="relax", **options)
    assert any("framework relaxed" in note for note in cleaned[Col.TRANSPORT_NOTES])
    shift = abs(cleaned[Col.EA_MIGRATION] - reference[Col.EA_MIGRATION])
    print(
        f"{name}: raw noisy {raw:.3f}, clean+relax {reference[Col.EA_MIGRATION]:.3f}, noisy+relax {cleaned[Col.EA_MIGRATION]:.3f}"
    )
    assert shift < 0.05
