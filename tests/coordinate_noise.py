"""OBELiX's coordinate noise on a bundled structure: Gaussian noise in fractional coordinates on the free
coordinates of the asymmetric unit, so the space group is kept; with the bundled-entry lookup and the
space-group check that the clean-up test and ``benchmarks/bench_cleanup_noise.py`` share."""

from __future__ import annotations

import dataclasses

import numpy as np

from screening.bundled_records import BundledEntry, load_bundled_entries

#: Standard deviation of the noise, in fractional coordinates (about 0.1 A in a 10 A cell).
NOISE_FRAC = 0.01


def bundled_entry(name: str) -> BundledEntry:
    """The bundled entry whose name starts with ``name``."""
    return next(e for e in load_bundled_entries() if e.name.startswith(name))


def space_group(structure) -> str:
    """Hermann-Mauguin symbol of ``structure`` at a tight tolerance (0.01 A)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    return SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_symbol()


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


def noisy(entry: BundledEntry, seed: int, noise_frac: float = NOISE_FRAC) -> BundledEntry:
    """``entry`` with Gaussian noise of ``noise_frac`` on every free coordinate of its asymmetric unit."""
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
        shaken = _on_special_position(ops, clean, clean + rng.normal(0, noise_frac, 3))
        sites.append(dataclasses.replace(site, coords=tuple(float(x) for x in shaken)))
    return dataclasses.replace(entry, sites=tuple(sites))
