"""The ``bvse`` migration-barrier method: BVSE landscape -> percolation barriers -> jump distance.

``ea_eV`` is the 1D percolation barrier: the lowest energy above the landscape minimum at which the
region accessible to the mobile ion connects the cell to a periodic image, i.e. the barrier of the
easiest long-range path. ``percolation_dimensionality`` is the dimensionality of the network at that
energy (barriers within ``DIMENSIONALITY_TIE_eV`` of it count as reached: symmetry-equivalent saddles
differ only by rounding); the 2D and 3D barriers are reported next to it.

The jump distance ``a`` of ``D = a^2 nu0 / 6 exp(-Ea/kT)`` is the shortest distance between two mobile-ion
sites (or a site and its own periodic image) that both lie in the percolating network at ``ea_eV``;
pairs closer than ``min_jump_distance_A`` (split positions of one disordered site) are skipped. When no
mobile-ion site lies in the network, all mobile-ion sites are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure
from pymatgen.optimization.neighbors import find_points_in_spheres

from screening.errors import InputError, ScreeningError
from screening.transport.landscape import DEFAULT_CUTOFF_A, DEFAULT_GRID_SPACING_A, bvse_landscape
from screening.transport.percolation import percolation_barriers, periodic_connectivity

#: Mobile-ion sites closer than this (angstrom) are split positions of one site, not a hop.
DEFAULT_MIN_JUMP_DISTANCE_A = 1.0

#: Percolation barriers closer than this (eV) to the 1D barrier are reached at the same energy.
DIMENSIONALITY_TIE_eV = 1e-3

#: Barriers above this (eV) count as no percolation.
DEFAULT_MAX_BARRIER_eV = 5.0


@dataclass(frozen=True)
class BVSEOptions:
    """Settings of the bvse method (the run settings nest this as ``bvse``).

    Attributes:
        grid_spacing_A: landscape grid spacing (angstrom).
        cutoff_A: interaction cutoff (angstrom).
        max_barrier_eV: barriers above this count as no percolation (eV).
        min_jump_distance_A: shorter mobile-site separations are split positions, not hops (angstrom).
    """

    grid_spacing_A: float = DEFAULT_GRID_SPACING_A
    cutoff_A: float = DEFAULT_CUTOFF_A
    max_barrier_eV: float = DEFAULT_MAX_BARRIER_eV
    min_jump_distance_A: float = DEFAULT_MIN_JUMP_DISTANCE_A


class NoPercolationError(ScreeningError, ValueError):
    """The mobile ion has no percolating path below the barrier cap."""


@dataclass(frozen=True)
class BVSEResult:
    """Outcome of the bvse method.

    Attributes:
        ea_eV: migration barrier used (the 1D percolation barrier), eV.
        ea_1d_eV: 1D percolation barrier, eV.
        ea_2d_eV: 2D percolation barrier, eV (None if none below the cap).
        ea_3d_eV: 3D percolation barrier, eV (None if none below the cap).
        percolation_dimensionality: dimensionality of the network at ``ea_eV`` (1, 2 or 3).
        jump_distance_A: hop length along the percolating network, angstrom.
        grid_shape: landscape grid.
    """

    ea_eV: float
    ea_1d_eV: float
    ea_2d_eV: float | None
    ea_3d_eV: float | None
    percolation_dimensionality: int
    jump_distance_A: float
    grid_shape: tuple[int, int, int]


def _mobile_sites(structure: Structure, mobile_ion: str) -> np.ndarray:
    return np.array(
        [i for i, site in enumerate(structure) if mobile_ion in {sp.symbol for sp in site.species}]
    )


def shortest_hop_A(frac_coords: np.ndarray, lattice_matrix_A: np.ndarray, min_distance_A: float) -> float:
    """Shortest periodic distance (angstrom) >= ``min_distance_A`` between the points, self-images included."""
    lattice = np.ascontiguousarray(lattice_matrix_A, dtype=float)
    cart = np.ascontiguousarray(np.asarray(frac_coords, dtype=float) @ lattice)
    radius = max(6.0, 2 * min_distance_A)
    longest = float(np.linalg.norm(lattice, axis=1).max()) + min_distance_A
    pbc = np.array([1, 1, 1], dtype=np.int64)
    while True:
        *_, dist = find_points_in_spheres(cart, cart, float(radius), pbc, lattice, tol=1e-8)
        dist = dist[dist >= min_distance_A]
        if len(dist) or radius > longest:
            break
        radius *= 2
    if not len(dist):
        raise InputError("no hop found between mobile-ion sites")
    return float(dist.min())


def bvse_barriers(
    structure: Structure,
    mobile_ion: str,
    mobile_charge: int,
    *,
    grid_spacing_A: float = DEFAULT_GRID_SPACING_A,
    cutoff_A: float = DEFAULT_CUTOFF_A,
    max_barrier_eV: float = DEFAULT_MAX_BARRIER_eV,
    min_jump_distance_A: float = DEFAULT_MIN_JUMP_DISTANCE_A,
) -> BVSEResult:
    """Percolation barriers and jump distance of a mobile cation from its BVSE landscape.

    Args:
        structure: oxidation-state-decorated structure (ordered or disordered) containing the mobile ion.
        mobile_ion: element symbol of the mobile ion.
        mobile_charge: its oxidation state.
        grid_spacing_A: landscape grid spacing (angstrom).
        cutoff_A: interaction cutoff (angstrom).
        max_barrier_eV: barriers above this count as no percolation.
        min_jump_distance_A: shorter mobile-site separations are not hops.

    Returns:
        The barriers, dimensionality and jump distance.

    Raises:
        NoPercolationError: no percolating path below ``max_barrier_eV``.
        LandscapeError: missing parameters (see :func:`bvse_landscape`).
    """
    energy = bvse_landscape(
        structure, mobile_ion, mobile_charge, grid_spacing_A=grid_spacing_A, cutoff_A=cutoff_A
    )
    result = percolation_barriers(energy, max_barrier_eV=max_barrier_eV)
    ea_1d, ea_2d, ea_3d = result.barrier_eV
    if ea_1d is None:
        raise NoPercolationError(f"no percolating {mobile_ion} path below {max_barrier_eV} eV (BVSE)")
    network = periodic_connectivity(energy <= result.threshold_eV[0])
    sites = _mobile_sites(structure, mobile_ion)
    frac = structure.frac_coords[sites] % 1.0
    shape = np.array(energy.shape)
    voxel = np.rint(frac * shape).astype(int) % shape
    on_network = network.dimensionality_of_label[network.labels[voxel[:, 0], voxel[:, 1], voxel[:, 2]]] > 0
    hop_frac = frac[on_network] if on_network.any() else frac
    jump = shortest_hop_A(hop_frac, structure.lattice.matrix, min_jump_distance_A)
    return BVSEResult(
        ea_eV=ea_1d,
        ea_1d_eV=ea_1d,
        ea_2d_eV=ea_2d,
        ea_3d_eV=ea_3d,
        percolation_dimensionality=max(
            dim
            for dim, ea in enumerate(result.barrier_eV, start=1)
            if ea is not None and ea <= ea_1d + DIMENSIONALITY_TIE_eV
        ),
        jump_distance_A=jump,
        grid_shape=tuple(int(n) for n in energy.shape),  # type: ignore[arg-type]
    )
