"""The BVSE site energy as this project computed it before the array code: a neighbour list per chunk of
points (pymatgen's ``find_points_in_spheres``) and numpy/scipy pair energies. It is the reference the
array code of :mod:`screening.transport.pair_sums` is checked against (``tests/test_pair_sums.py``) and
timed against (``benchmarks/bench_landscape.py``)."""

from __future__ import annotations

import math

import numpy as np
from pymatgen.optimization.neighbors import find_points_in_spheres
from scipy.special import erfc

from screening.schema import STATUS_OK, Col
from screening.sources.bundled import iter_bundled_rows
from screening.structures import row_to_structure
from screening.transport.landscape import DEFAULT_CUTOFF_A, MIN_DISTANCE_A, FrameworkTerms
from screening.transport.oxidation import OxidationStateError, assign_oxidation_states

#: (point, atom) pairs per neighbour-list call, as before.
PAIRS_PER_CHUNK = 4_000_000


def _neighbour_list_sum(points, atoms, lattice, cutoff, energy_of):
    total = np.zeros(len(points))
    if len(atoms) == 0:
        return total
    volume = abs(np.linalg.det(lattice))
    neighbours_per_point = max(1.0, len(atoms) / volume * 4.0 / 3.0 * math.pi * cutoff**3)
    chunk = max(256, int(PAIRS_PER_CHUNK / neighbours_per_point))
    for start in range(0, len(points), chunk):
        centers = np.ascontiguousarray(points[start : start + chunk], dtype=float)
        idx_point, idx_atom, _, dist = find_points_in_spheres(
            np.ascontiguousarray(atoms, dtype=float),
            centers,
            float(cutoff),
            np.array([1, 1, 1], dtype=np.int64),
            np.ascontiguousarray(lattice, dtype=float),
            tol=1e-8,
        )
        dist = np.maximum(dist, MIN_DISTANCE_A)
        total[start : start + len(centers)] = np.bincount(
            idx_point, weights=energy_of(idx_atom, dist), minlength=len(centers)
        )
    return total


def oracle_site_energy_eV(
    terms: FrameworkTerms, lattice: np.ndarray, points: np.ndarray, cutoff: float = DEFAULT_CUTOFF_A
) -> np.ndarray:
    """BVSE site energy (eV) at Cartesian points (n, 3), by neighbour list."""
    w_a, r_min, alpha, d0 = terms.anion_params.T
    w_c, prefactor, screening = terms.cation_params.T

    def morse(i, r):
        return w_a[i] * 0.5 * d0[i] * ((np.exp(alpha[i] * (r_min[i] - r)) - 1.0) ** 2 - 1.0)

    def coulomb(i, r):
        return w_c[i] * prefactor[i] / r * erfc(r / screening[i])

    return _neighbour_list_sum(points, terms.anion_coords_A, lattice, cutoff, morse) + _neighbour_list_sum(
        points, terms.cation_coords_A, lattice, cutoff, coulomb
    )


def grid_frac_coords(shape: tuple[int, int, int]) -> np.ndarray:
    """Fractional coordinates (n, 3) of the landscape's grid, C order, point (i, j, k) at (i/nx, j/ny, k/nz)."""
    axes = [np.arange(n) / n for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def bundled_li_structures():
    """(name, oxidation-state-decorated structure) of every bundled Li structure the checks run over."""
    for row in iter_bundled_rows():
        if row[Col.STATUS] != STATUS_OK or "Li" not in row[Col.ELEMENTS]:
            continue
        try:
            yield row[Col.NAME], assign_oxidation_states(row_to_structure(row)).structure
        except OxidationStateError:
            continue
