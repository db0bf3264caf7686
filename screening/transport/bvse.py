"""The ``bvse`` migration-barrier method: BVSE landscape -> percolation barriers -> jump distance.

The percolation energy of the 1D network is the lowest energy at which the region accessible to the
mobile ion connects the cell to a periodic image: the saddle of the easiest long-range path. ``ea_eV``
is the climb to it from where the ions are, ``E_saddle - E_occupied``, with ``E_occupied`` the
occupancy-weighted energy of the published mobile-ion sites (:func:`occupied_site_energy_eV`), not the
landscape minimum: a site the structure leaves empty holds no ion that has to climb out of it. Where
no published site lies on that path, the ions first climb over their pockets' rims onto it, and the
climb is part of ``ea_eV``.
``percolation_dimensionality`` is the dimensionality of the network at that energy (barriers within
``DIMENSIONALITY_TIE_eV`` of it count as reached: symmetry-equivalent saddles differ only by rounding);
the 2D and 3D barriers are reported next to it, from the same ``E_occupied``.

The jump distance ``a`` of ``D = a^2 nu0 / 6 exp(-Ea/kT)`` is the shortest distance between two mobile-ion
sites (or a site and its own periodic image) that both lie in the percolating network at its saddle;
pairs closer than ``min_jump_distance_A`` (split positions of one disordered site) are skipped. When no
mobile-ion site lies in the network, all mobile-ion sites are used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.core import Structure
from pymatgen.optimization.neighbors import find_points_in_spheres

from screening.constants import BOLTZMANN_eV_PER_K
from screening.errors import InputError, ScreeningError
from screening.transport.carriers import mobile_ion_occupancy, split_site_groups
from screening.transport.landscape import (
    DEFAULT_CUTOFF_A,
    DEFAULT_GRID_SPACING_A,
    MIN_DISTANCE_A,
    framework_pair_terms,
    framework_terms,
    landscape_from_terms,
    mobile_ion_repulsion_terms,
)
from screening.transport.pair_sums import CUTOFF_TOLERANCE_A, PairTerms, PointPairSum
from screening.transport.percolation import (
    descend,
    joining_energy_eV,
    percolation_barriers,
    periodic_connectivity,
)

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
        ea_1d_eV: 1D percolation barrier above ``occupied_site_energy_eV``, eV.
        ea_2d_eV: 2D percolation barrier, likewise, eV (None if none below the cap).
        ea_3d_eV: 3D percolation barrier, likewise, eV (None if none below the cap).
        occupied_site_energy_eV: where the ions start from, above the landscape minimum
            (:func:`occupied_site_energy_eV`), eV; the barriers above the minimum are the sum. Below
            zero by the climb over a pocket's rim where no ion sits on the percolating path.
        percolation_dimensionality: dimensionality of the network at ``ea_eV`` (1, 2 or 3).
        jump_distance_A: hop length along the percolating network, angstrom.
        grid_shape: landscape grid.
        frenkel_eV: Frenkel-pair formation energy estimated from the landscape
            (:func:`frenkel_energy_eV`), eV.
        frenkel: that estimate with the positions of its vacancy and interstitial.
        notes: documented fallbacks taken (substituted bond-valence pairs).
    """

    ea_eV: float
    ea_1d_eV: float
    ea_2d_eV: float | None
    ea_3d_eV: float | None
    percolation_dimensionality: int
    jump_distance_A: float
    grid_shape: tuple[int, int, int]
    occupied_site_energy_eV: float = 0.0
    frenkel_eV: float = 0.0
    frenkel: FrenkelEstimate | None = None
    notes: tuple[str, ...] = ()


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
    temperature_K: float = 300.0,
    device: torch.device | str = "cpu",
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
        temperature_K: temperature of the occupancy-weighted start energy (K).
        device: torch device of the landscape's array code (the percolation search runs on the CPU).

    Returns:
        The barriers, dimensionality and jump distance.

    Raises:
        NoPercolationError: no percolating path below ``max_barrier_eV``.
        LandscapeError: missing parameters (see :func:`bvse_landscape`).
    """
    terms = framework_terms(structure, mobile_ion, mobile_charge)
    energy = landscape_from_terms(
        terms, structure, grid_spacing_A=grid_spacing_A, cutoff_A=cutoff_A, device=device
    )
    result = percolation_barriers(energy, max_barrier_eV=max_barrier_eV)
    ea_1d, ea_2d, ea_3d = result.barrier_eV
    if ea_1d is None:
        raise NoPercolationError(f"no percolating {mobile_ion} path below {max_barrier_eV} eV (BVSE)")
    threshold = float(result.threshold_eV[0])
    network = periodic_connectivity(energy <= threshold)
    sites = _mobile_sites(structure, mobile_ion)
    frac = structure.frac_coords[sites] % 1.0
    shape = np.array(energy.shape)
    voxel = np.rint(frac * shape).astype(int) % shape
    on_network = network.dimensionality_of_label[network.labels[voxel[:, 0], voxel[:, 1], voxel[:, 2]]] > 0
    if on_network.any():  # the ions on the long-range path carry the current; the others are spectators
        hop_frac = frac[on_network]
        network_rows = np.flatnonzero(on_network)
        rim_eV = np.zeros(len(network_rows))
    else:  # every ion sits in a pocket off the path: it climbs over the pocket's rim to reach it
        hop_frac = frac
        pocket = np.array([descend(energy, v) for v in voxel])
        joins = joining_energy_eV(energy, pocket, from_eV=threshold, to_eV=result.minimum_eV + max_barrier_eV)
        network_rows = np.flatnonzero(np.isfinite(joins))
        if not len(network_rows):
            raise NoPercolationError(
                f"no {mobile_ion} site reaches a percolating path below {max_barrier_eV} eV (BVSE)"
            )
        rim_eV = joins[network_rows] - threshold
    jump = shortest_hop_A(hop_frac, structure.lattice.matrix, min_jump_distance_A)

    repulsion = mobile_ion_repulsion_terms(
        structure, mobile_ion, mobile_charge, exclude_within_A=min_jump_distance_A
    )
    framework_at, repulsion_at = (
        PointPairSum(
            pair_terms,
            structure.lattice.matrix,
            cutoff_A=cutoff_A,
            min_distance_A=MIN_DISTANCE_A,
            device=torch.device(device),
        )
        for pair_terms in (framework_pair_terms(terms), [repulsion])
    )

    def landscape_energy(points_frac: np.ndarray) -> np.ndarray:
        """The migration landscape above its grid minimum at fractional points, eV."""
        return framework_at(structure.lattice.get_cartesian_coords(points_frac)) - result.minimum_eV

    def defect_energy(points_frac: np.ndarray) -> np.ndarray:
        """Landscape plus the other mobile ions' repulsion at fractional points, eV."""
        points_A = structure.lattice.get_cartesian_coords(points_frac)
        return framework_at(points_A) + repulsion_at(points_A)

    groups = split_site_groups(frac, structure.lattice.matrix, min_jump_distance_A)
    own_partners = _split_partners(frac, groups)
    row_of = {int(site): row for row, site in enumerate(network_rows)}
    ion_groups = [rows for g in groups if (rows := [row_of[i] for i in g if i in row_of])]

    def ion_energy(row: int, points_frac: np.ndarray) -> np.ndarray:
        """``defect_energy`` of the ion of network site ``row``, without its own split positions' share."""
        partner_rows, partner_frac = own_partners[network_rows[row]]
        return defect_energy(points_frac) - _pair_energy_eV(
            repulsion,
            structure.lattice.get_cartesian_coords(points_frac),
            structure.lattice.get_cartesian_coords(partner_frac),
            partner_rows,
            cutoff_A,
        )

    frenkel = frenkel_energy_eV(
        energy,
        network.dimensionality_of_label[network.labels] > 0,
        frac[network_rows],
        structure.lattice.matrix,
        defect_energy=defect_energy,
        site_energy=ion_energy,
        ion_groups=ion_groups,
        exclusion_A=min_jump_distance_A,
        saddle_eV=threshold,
        occupied_frac=frac,
    )
    start = occupied_site_energy_eV(
        landscape_energy,
        frac[network_rows],
        np.array([mobile_ion_occupancy(structure[int(i)], mobile_ion) for i in sites[network_rows]]),
        ion_groups,
        structure.lattice.matrix,
        saddle_eV=ea_1d,
        temperature_K=temperature_K,
        rim_eV=rim_eV,
    )
    return BVSEResult(
        ea_eV=ea_1d - start,
        ea_1d_eV=ea_1d - start,
        ea_2d_eV=None if ea_2d is None else ea_2d - start,
        ea_3d_eV=None if ea_3d is None else ea_3d - start,
        occupied_site_energy_eV=start,
        percolation_dimensionality=max(
            dim
            for dim, ea in enumerate(result.barrier_eV, start=1)
            if ea is not None and ea <= ea_1d + DIMENSIONALITY_TIE_eV
        ),
        jump_distance_A=jump,
        grid_shape=tuple(int(n) for n in energy.shape),  # type: ignore[arg-type]
        frenkel_eV=frenkel.energy_eV,
        frenkel=frenkel,
        notes=terms.notes,
    )


def occupied_site_energy_eV(
    site_energy: Callable[[np.ndarray], np.ndarray],
    site_frac: np.ndarray,
    occupancies: np.ndarray,
    ion_groups: Sequence[Sequence[int]],
    lattice_matrix_A: np.ndarray,
    *,
    saddle_eV: float,
    temperature_K: float,
    rim_eV: np.ndarray | None = None,
) -> float:
    """The energy the mobile ions climb from: their sites' landscape energies, weighted by where they are.

    An ion at a site of energy ``E_g`` leaves it over the saddle ``E_s`` at the rate
    ``nu0 exp(-(E_s - E_g) / kT)``. Averaged over the ions as the structure places them (``n_g`` ions
    in site ``g``), the mean rate is ``nu0 exp(-(E_s - E_occ) / kT)`` with

        ``E_occ = kT ln( sum_g n_g exp(E_g / kT) / sum_g n_g )``,

    so the barrier is ``E_s - E_occ``. Two limits make it the right reference. A single ion among empty
    sites spends a time proportional to ``exp(-E_g / kT)`` on each, so ``n_g`` follows the Boltzmann
    factor and the mean rate equals ``1 / <tau>`` of the random-trap model, set by the deepest sites.
    When the deep sites are full and the rest of the ions sit on shallower ones (bundled LGPS: the full
    4d sites at the minimum, the 8f and half-filled 16h channel sites 0.23 and 0.28 eV above it), those
    ions carry the current and the barrier is their climb, ``E_s - mu`` of a lattice gas whose chemical
    potential lies at the filled level; measuring from
    the landscape minimum instead would make every such ion climb out of a site it does not occupy.
    The carriers' site blocking is the carrier model's ``c (1 - c)`` (:mod:`screening.transport.carriers`).

    Each published position takes the landscape minimum next to it (published coordinates are not
    exactly at the minimum, :func:`_refined_minimum`); an ion with split positions sits at its lowest
    (``ion_groups``), holding their summed occupancy (at most 1). A site above the saddle (an ion the
    landscape does not bind there, from a coordinate error or the landscape's own) counts at the saddle,
    so the barrier is never negative. Occupancies are the published ones: nothing here is fitted.

    Where no ion sits on the percolating path, each has to climb out of its pocket first: over the
    pocket's rim, ``rim_eV`` above the saddle (the energy at which the pocket joins a percolating path,
    :func:`~screening.transport.percolation.joining_energy_eV`). Its escape then costs
    ``E_s + rim_g - E_g``, which is the formula above with ``E_g - rim_g`` in place of ``E_g``: the start
    can lie below the landscape minimum by the climb. A pocket floor above the saddle counts up to the
    rim, not the saddle (its ion climbs only from there).

    A limit of the reference, underestimating a barrier: each ion's escape from its own site is counted,
    not the series of sites a long-range path must pass. Where that path runs through deeper, partly
    filled sites (a garnet's 24d between its 96h positions) the climb out of those limits too, and the
    occupancies and the single-ion landscape disagree there (the Li-Li repulsion that fills the 96h
    positions is not in the landscape).

    Args:
        site_energy: the migration landscape above its minimum (eV) at fractional points (n, 3).
        site_frac: fractional positions of the mobile ion.
        occupancies: the mobile ion's occupancy of each position.
        ion_groups: rows of ``site_frac`` that are the split positions of one ion.
        lattice_matrix_A: lattice vectors (rows), angstrom.
        saddle_eV: the 1D percolation energy above the landscape minimum, eV.
        temperature_K: temperature of the weighting (K).
        rim_eV: the climb above the saddle from each position's pocket to a percolating path (eV; zero,
            the default, for positions on the path).

    Returns:
        ``E_occ`` relative to the landscape minimum, eV, at most ``saddle_eV`` (below zero only by a rim).
    """
    groups = [list(group) for group in ion_groups if len(group)]
    group_ions = np.array([min(1.0, float(occupancies[g].sum())) for g in groups])
    if not groups or group_ions.sum() <= 0.0:
        return 0.0
    kT = BOLTZMANN_eV_PER_K * temperature_K
    energies = np.array([_refined_minimum(site_energy, frac, lattice_matrix_A)[0] for frac in site_frac])
    rims = np.zeros(len(site_frac)) if rim_eV is None else np.asarray(rim_eV, dtype=float)
    lowest = [g[int(np.argmin(energies[g]))] for g in groups]
    group_energy = np.clip(energies[lowest], 0.0, saddle_eV + rims[lowest]) - rims[lowest]
    top = float(group_energy.max())
    mean = float((group_ions * np.exp((group_energy - top) / kT)).sum() / group_ions.sum())
    return min(saddle_eV, top + kT * math.log(mean))


def _split_partners(frac: np.ndarray, groups: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each mobile-ion position, the other positions of its physical site (``groups``, from
    :func:`~screening.transport.carriers.split_site_groups`): their rows in ``frac`` and their images
    nearest to it (fractional). They are where the same ion would otherwise be, never a second ion."""
    partners = [(np.empty(0, dtype=int), np.empty((0, 3))) for _ in frac]
    for group in groups:
        for i in group:
            rows = np.array([j for j in group if j != i], dtype=int)
            delta = frac[rows] - frac[i]
            partners[i] = (rows, frac[i] + delta - np.rint(delta))
    return partners


def _pair_energy_eV(
    terms: PairTerms, points_A: np.ndarray, positions_A: np.ndarray, rows: np.ndarray, cutoff_A: float
) -> np.ndarray:
    """Energy (eV) at each point from the atoms ``rows`` of ``terms`` placed at ``positions_A`` only (one
    image each), with the pair energy of ``terms`` and the pair sum's cutoff (what the sum counted)."""
    if not len(rows):
        return np.zeros(len(points_A))
    distances = torch.cdist(
        torch.as_tensor(points_A, dtype=torch.float64), torch.as_tensor(positions_A, dtype=torch.float64)
    )
    energy = terms.energy(distances, torch.as_tensor(terms.params[rows]))
    counted = distances <= cutoff_A + CUTOFF_TOLERANCE_A
    return torch.where(counted, energy, torch.zeros_like(energy)).sum(dim=-1).numpy()


@dataclass(frozen=True)
class FrenkelEstimate:
    """A Frenkel pair from the landscape: its formation energy and where the ion goes from and to.

    Attributes:
        energy_eV: formation energy, eV (never negative).
        site_frac: fractional position of the vacated site.
        interstitial_candidates_frac: every distinct interstitial minimum, lowest first, shape (n, 3):
            the bond-valence ranking of the interstitials is a guess that relaxation can reorder
            (:mod:`screening.transport.defects` tries several).
    """

    energy_eV: float
    site_frac: np.ndarray
    interstitial_candidates_frac: np.ndarray

    @property
    def interstitial_frac(self) -> np.ndarray:
        """Fractional position of the interstitial: the lowest candidate, the one ``energy_eV`` is of."""
        return self.interstitial_candidates_frac[0]


def _periodic_distances_A(frac_a: np.ndarray, frac_b: np.ndarray, lattice_matrix_A: np.ndarray) -> np.ndarray:
    """Minimum-image distances (len(a), len(b)) between fractional positions, angstrom."""
    delta = frac_a[:, None, :] - frac_b[None, :, :]
    delta -= np.rint(delta)
    return np.linalg.norm(delta @ lattice_matrix_A, axis=-1)


def _refined_minimum(
    energy_at: Callable[[np.ndarray], np.ndarray], frac: np.ndarray, lattice_matrix_A: np.ndarray
) -> tuple[float, np.ndarray]:
    """Lowest value of ``energy_at`` near ``frac``, off the grid: a pattern search on a 3x3x3 stencil
    whose step halves from 0.2 to 0.0125 A, moving while a neighbour is lower."""
    inverse = np.linalg.inv(lattice_matrix_A)
    offsets = np.array(list(np.ndindex(3, 3, 3)), dtype=float) - 1.0
    best_frac = np.asarray(frac, dtype=float)
    best = float(energy_at(best_frac[None, :])[0])
    for step_A in (0.2, 0.1, 0.05, 0.025, 0.0125):
        for _ in range(20):
            trial = best_frac + (offsets * step_A) @ inverse
            values = energy_at(trial)
            if values.min() >= best - 1e-9:
                break
            best, best_frac = float(values.min()), trial[int(np.argmin(values))]
    return best, best_frac


#: Interstitial minima whose energies agree this closely are taken as symmetry images of one another
#: (eV): images have equal energies up to the refinement's precision, well below this.
SAME_MINIMUM_eV = 1e-3


def _distinct_minima(minima: list[tuple[float, np.ndarray]]) -> list[tuple[float, np.ndarray]]:
    """One of each set of equal-energy minima (``minima`` sorted by energy), in order."""
    distinct = minima[:1]
    for value, frac in minima[1:]:
        if value - distinct[-1][0] > SAME_MINIMUM_eV:
            distinct.append((value, frac))
    return distinct


def frenkel_energy_eV(
    energy_eV: np.ndarray,
    on_network: np.ndarray,
    site_frac: np.ndarray,
    lattice_matrix_A: np.ndarray,
    *,
    defect_energy: Callable[[np.ndarray], np.ndarray],
    exclusion_A: float,
    saddle_eV: float,
    occupied_frac: np.ndarray | None = None,
    site_energy: Callable[[int, np.ndarray], np.ndarray] | None = None,
    ion_groups: Sequence[Sequence[int]] | None = None,
) -> FrenkelEstimate:
    """Frenkel-pair formation energy of the mobile ion from its site-energy landscape.

    Moving an ion from its site to the lowest interstitial site costs, in the bond-valence picture, the
    difference of their site energies, each including the Coulomb repulsion of the other mobile ions
    (which the migration landscape leaves out): ``E_F = E_interstitial - E_site`` with both from
    ``defect_energy``. The site is the least bound ion on the network, its energy the minimum near its
    position (the lowest of its split positions, whose repulsion on it is left out: ``site_energy``,
    ``ion_groups``). The interstitial may lie anywhere in the cell, on the conducting network or in a
    pocket beside it: Frenkel pairs are an equilibrium population, set by their formation energy alone,
    and the vacancy the pair leaves on the ions' own sublattice carries the current wherever the
    interstitial sits. (Until 2026-12-06 only minima on the network counted; in near-identical
    argyrodites a 0.1 A shift of the anions moved the empty 4c void on or off the network at the 1D
    threshold and E_F between 0 and 1 eV.) Interstitials are the local minima of the landscape at least
    ``exclusion_A`` from every mobile-ion position, refined off the grid, and still that far after the
    refinement: a grid minimum of the migration landscape can lie on the slope of the defect-energy
    landscape down to an occupied site (whose own ion the repulsion leaves out), and sliding there would
    make the "pair" a move from one occupied site to another, E_F <= 0. Without such a minimum the
    interstitial is the lowest point of the saddle region (network points below ``saddle_eV``) far from
    the mobile ions. Lattice relaxation around the defects and their attraction are neglected, so this is an
    upper-bound estimate (:mod:`screening.transport.defects` relaxes with the potential); never negative.

    Args:
        energy_eV: the migration landscape on its periodic grid.
        on_network: boolean grid, True on the percolating network (the saddle region of the fallback).
        site_frac: fractional positions of the mobile-ion sites on the network.
        lattice_matrix_A: lattice vectors (rows), angstrom.
        defect_energy: landscape plus mobile-ion repulsion (eV) at fractional points (n, 3).
        exclusion_A: minima closer than this to a site belong to that site, angstrom.
        saddle_eV: the 1D percolation threshold (absolute), eV.
        occupied_frac: every mobile-ion position, on the network or not (default ``site_frac``):
            interstitials keep ``exclusion_A`` from all of them.
        site_energy: ``site_energy(k, points)``, the energy of the ion of site ``k`` (a row of
            ``site_frac``) at fractional points: ``defect_energy`` without the repulsion of that ion's own
            split positions, which are empty while it sits at one of them (default ``defect_energy``,
            right where no split position lies farther than ``exclusion_A`` from its partners).
        ion_groups: rows of ``site_frac`` that are the split positions of one ion; an ion sits at its
            lowest position (default: each row its own ion).
    """
    from scipy.ndimage import minimum_filter

    shape = np.array(energy_eV.shape)
    occupied = site_frac if occupied_frac is None else occupied_frac

    def away_from_the_ions(points_frac: np.ndarray) -> np.ndarray:
        return _periodic_distances_A(points_frac, occupied, lattice_matrix_A).min(axis=1) >= exclusion_A

    def energy_of_ion(k: int) -> Callable[[np.ndarray], np.ndarray]:
        return defect_energy if site_energy is None else lambda points: site_energy(k, points)

    positions = [
        _refined_minimum(energy_of_ion(k), frac, lattice_matrix_A) for k, frac in enumerate(site_frac)
    ]
    groups = [[k] for k in range(len(site_frac))] if ion_groups is None else ion_groups
    home_of_ion = [min(group, key=lambda k: positions[k][0]) for group in groups]  # its lowest position
    least_bound = max(home_of_ion, key=lambda k: positions[k][0])
    e_site = positions[least_bound][0]
    is_minimum = minimum_filter(energy_eV, size=3, mode="wrap") == energy_eV
    candidates = np.argwhere(is_minimum)
    if len(candidates):
        candidates = candidates[away_from_the_ions(candidates / shape)]
    refined = [_refined_minimum(defect_energy, c / shape, lattice_matrix_A) for c in candidates]
    refined = [(value, frac) for value, frac in refined if away_from_the_ions(frac[None, :] % 1.0)[0]]
    if refined:
        distinct = _distinct_minima(sorted(refined, key=lambda vf: vf[0]))
        best_value = distinct[0][0]
        candidates_frac = np.array([frac for _, frac in distinct]) % 1.0
    else:  # no interstitial minimum: the lowest point of the saddle region, far from the ions
        near_saddle = np.argwhere(on_network & (energy_eV <= saddle_eV))
        far = away_from_the_ions(near_saddle / shape)
        points = (near_saddle[far] if far.any() else near_saddle) / shape
        values = defect_energy(points)
        best_value, best_frac = float(values.min()), points[int(np.argmin(values))]
        candidates_frac = np.asarray(best_frac)[None, :] % 1.0
    return FrenkelEstimate(
        energy_eV=max(0.0, best_value - e_site),
        site_frac=np.asarray(site_frac[least_bound]),
        interstitial_candidates_frac=candidates_frac,
    )
