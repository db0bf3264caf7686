"""Ordered configurations of a disordered crystal, for the ``sample`` disorder strategy.

A disordered structure (mixed sites, partial occupancies) is turned into K ordered configurations in a
supercell large enough to represent its occupancies: sites with identical occupancies form a group, each
group receives exactly ``round(n_group_sites * occupancy)`` atoms of each element (largest-remainder
rounding, vacancies taking the rest), and the labels are shuffled within the group by a seeded generator,
never putting two atoms of partially occupied sites closer than ``min_distance_A`` (split sites hold one
atom at a time). Vacancies are removed. Every configuration therefore has the same composition, equal to
the parent's where the supercell allows it; the remaining difference is reported as ``composition_error``.
Split positions published with more than one atom between them lose the atoms that cannot fit, up to
:data:`MAX_EXCLUSION_SHORTFALL` of the cell (also in ``composition_error``); beyond that sampling fails
with the counts that do not fit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from screening.errors import InputError
from screening.graphs import perpendicular_widths_A
from screening.split_positions import SPLIT_POSITION_DISTANCE_A, split_position_pairs

#: Largest supercell (in sites, before vacancies are removed) searched for an exact composition.
DEFAULT_MAX_SUPERCELL_SITES = 256

#: Wanted smallest perpendicular width of a sampling supercell (angstrom), about twice a typical
#: cation-cation distance, so that neighbouring sites are not periodic images of each other.
DEFAULT_MIN_WIDTH_A = 8.0

#: Random sequential placements tried per configuration before giving up.
MAX_PLACEMENT_TRIES = 200
#: Split positions whose published occupancies add up to more than one atom (a refinement's rounding, or
#: positions split beyond what their occupancies allow) leave atoms that no configuration can place; up to
#: this fraction of the supercell's atoms may stay out (the row keeps ingest's "split positions
#: overfilled" warning and the prediction its ``composition_error``), beyond it sampling fails: the energy
#: would belong to a different compound. 2 % is about what rounded occupancies leave over a whole cell
#: (an LGPS refined with Li 0.54 on pairs of positions 0.42 A apart: 1 of 100 atoms).
MAX_EXCLUSION_SHORTFALL = 0.02

#: A group's ideal atom count may miss an integer by this much (occupancies rounded in published CIFs,
#: 0.333 for 1/3) and still count as exactly representable.
COUNT_TOLERANCE = 0.02

_VACANCY = ""


@dataclass(frozen=True)
class ConfigurationSample:
    """K ordered configurations of one disordered structure.

    Attributes:
        structures: ordered configurations (vacancies removed), all with the same composition.
        supercell_scaling: diagonal supercell multipliers of the parent cell.
        composition_error: largest absolute difference, over elements, between the atom fraction of the
            configurations and that of the parent (0 when the supercell represents it exactly).
    """

    structures: list[Structure]
    supercell_scaling: tuple[int, int, int]
    composition_error: float


def _occupancy_key(site) -> tuple[tuple[str, float], ...]:
    """A site's occupancy by element (oxidation states merged), as a hashable sorted tuple."""
    composition = site.species.element_composition
    return tuple(sorted((el.symbol, float(occ)) for el, occ in composition.items()))


def _site_groups(structure: Structure) -> dict[tuple[tuple[str, float], ...], list[int]]:
    groups: dict[tuple[tuple[str, float], ...], list[int]] = {}
    for index, site in enumerate(structure):
        groups.setdefault(_occupancy_key(site), []).append(index)
    return groups


def _rounded_counts(key: tuple[tuple[str, float], ...], n_sites: int) -> tuple[dict[str, int], float]:
    """Integer atom counts per label (vacancy ``""`` included) summing to ``n_sites``, and the largest
    deviation of a count from its ideal value ``n_sites * occupancy``."""
    labels = [symbol for symbol, _ in key] + [_VACANCY]
    occupied = math.fsum(occ for _, occ in key)
    norm = max(1.0, occupied)  # occupancies summing a hair above 1 (CIF round-off) leave no vacancy
    targets = np.array([n_sites * occ / norm for _, occ in key] + [n_sites * (1.0 - occupied / norm)])
    counts = _largest_remainder(targets, n_sites)
    return dict(zip(labels, counts.tolist(), strict=True)), float(np.max(np.abs(counts - targets)))


def _largest_remainder(targets: np.ndarray, total: int) -> np.ndarray:
    """Integers summing to ``total`` (the sum of ``targets``): each target rounded down, then one more for
    the largest remainders, ties in order."""
    counts = np.floor(targets + 1e-9).astype(int)
    for index in np.argsort(-(targets - counts), kind="stable")[: total - int(counts.sum())]:
        counts[index] += 1
    return counts


def _atom_labels(counts: dict[str, int]) -> list[str]:
    """One label per atom of a group's ``counts`` (vacancies left out)."""
    return [label for label, count in counts.items() if label != _VACANCY for _ in range(count)]


def _composition_error(groups: dict[tuple, list[int]], multiplier: int) -> tuple[float, float]:
    """(largest count deviation, largest atom-fraction error) of the rounded supercell composition."""
    ideal: dict[str, float] = {}
    actual: dict[str, int] = {}
    worst_count = 0.0
    for key, sites in groups.items():
        counts, deviation = _rounded_counts(key, multiplier * len(sites))
        worst_count = max(worst_count, deviation)
        for symbol, occ in key:
            ideal[symbol] = ideal.get(symbol, 0.0) + multiplier * len(sites) * occ
            actual[symbol] = actual.get(symbol, 0) + counts[symbol]
    n_actual = sum(actual.values())
    if n_actual == 0:
        return worst_count, math.inf
    n_ideal = math.fsum(ideal.values())
    fraction_error = max(abs(actual[s] / n_actual - ideal[s] / n_ideal) for s in ideal)
    return worst_count, fraction_error


def _diagonal_scaling(widths_A: np.ndarray, multiplier: int) -> tuple[int, int, int]:
    """The most isotropic diagonal supercell ``(a, b, c)`` with ``a * b * c == multiplier``."""
    best: tuple[float, tuple[int, int, int]] | None = None
    for a, b in itertools.product(range(1, multiplier + 1), repeat=2):
        if multiplier % (a * b):
            continue
        scaling = (a, b, multiplier // (a * b))
        sizes = widths_A * np.array(scaling)
        score = float(sizes.max() / sizes.min())
        if best is None or score < best[0] - 1e-9:
            best = (score, scaling)
    assert best is not None
    return best[1]


def choose_supercell(
    structure: Structure,
    *,
    max_supercell_sites: int = DEFAULT_MAX_SUPERCELL_SITES,
    min_width_A: float = DEFAULT_MIN_WIDTH_A,
) -> tuple[tuple[int, int, int], float]:
    """A diagonal supercell that represents the occupancies (exactly where the size limit allows).

    The smallest multiplier ``m0`` of the cell that makes every group's atom counts integers is found
    first (else the one with the smallest composition error); then the smallest multiple of ``m0`` whose
    most isotropic diagonal supercell is at least ``min_width_A`` wide in every direction (else the widest
    one within the limit), so that a site does not see its own periodic images as its nearest neighbours.

    Args:
        structure: a (dis)ordered structure.
        max_supercell_sites: largest supercell searched, in sites (the parent cell is always allowed).
        min_width_A: wanted smallest perpendicular width of the supercell, angstrom.

    Returns:
        ``(scaling, composition_error)``: diagonal multipliers and the atom-fraction error left.

    Raises:
        ValueError: when no supercell holds a single atom (every site empty).
    """
    groups = _site_groups(structure)
    max_multiplier = max(1, max_supercell_sites // len(structure))
    best: tuple[float, int] | None = None
    for multiplier in range(1, max_multiplier + 1):
        worst_count, fraction_error = _composition_error(groups, multiplier)
        if worst_count <= COUNT_TOLERANCE:
            best = (fraction_error, multiplier)
            break
        if best is None or fraction_error < best[0] - 1e-12:
            best = (fraction_error, multiplier)
    assert best is not None
    error, base = best
    if not math.isfinite(error):
        raise InputError("no supercell up to the size limit holds a single atom")
    widths = perpendicular_widths_A(structure.lattice.matrix)
    chosen: tuple[float, tuple[int, int, int], float] | None = None
    for multiplier in range(base, max_multiplier + 1, base):
        multiple_error = error if multiplier == base else _composition_error(groups, multiplier)[1]
        if multiple_error > error + 1e-12:
            continue
        scaling = _diagonal_scaling(widths, multiplier)
        width = float((widths * np.array(scaling)).min())
        if chosen is None or width > chosen[0] + 1e-9:
            chosen = (width, scaling, multiple_error)
        if width >= min_width_A:
            break
    assert chosen is not None
    return chosen[1], chosen[2]


def sample_configurations(
    structure: Structure,
    n_samples: int,
    *,
    seed: int = 0,
    max_supercell_sites: int = DEFAULT_MAX_SUPERCELL_SITES,
    min_width_A: float = DEFAULT_MIN_WIDTH_A,
    min_distance_A: float = SPLIT_POSITION_DISTANCE_A,
) -> ConfigurationSample:
    """Draw ``n_samples`` ordered configurations of a disordered structure.

    Args:
        structure: the disordered parent (mixed and/or partially occupied sites).
        n_samples: number of configurations K (>= 1).
        seed: seed of the generator; the same structure, seed and K give the same configurations,
            independently of any other structure evaluated alongside.
        max_supercell_sites: largest supercell searched for an exact composition.
        min_width_A: wanted smallest perpendicular width of the supercell (see :func:`choose_supercell`).
        min_distance_A: split positions (:mod:`screening.split_positions`: partially occupied sites
            closer than this) hold one atom at a time (0: no exclusion, plain random permutations).

    Returns:
        The configurations, the supercell used and the composition error.

    Raises:
        ValueError: for ``n_samples < 1``, a structure without any atom, or occupancies that the
            exclusion cannot accommodate within :data:`MAX_EXCLUSION_SHORTFALL` of the atoms.
    """
    if n_samples < 1:
        raise InputError(f"n_samples must be >= 1, got {n_samples}")
    scaling, composition_error = choose_supercell(
        structure, max_supercell_sites=max_supercell_sites, min_width_A=min_width_A
    )
    supercell = structure.copy()
    supercell.make_supercell(scaling)
    groups = [(sites, _rounded_counts(key, len(sites))[0]) for key, sites in _site_groups(supercell).items()]
    conflicts = _conflicts(supercell, min_distance_A)
    rng = np.random.default_rng(seed)
    frac_coords = supercell.frac_coords
    n_wanted = sum(len(_atom_labels(counts)) for _, counts in groups)
    configurations = []
    for _ in range(n_samples):
        species, short = _draw(groups, conflicts, len(supercell), rng)
        n_missing = sum(wanted - placed for _, wanted, placed in short)
        if n_missing > MAX_EXCLUSION_SHORTFALL * n_wanted:
            raise InputError(_shortfall_message(structure, supercell, groups, short, min_distance_A))
        kept = [i for i, label in enumerate(species) if label != _VACANCY]
        configuration = Structure(supercell.lattice, [species[i] for i in kept], frac_coords[kept])
        if short:
            composition_error = max(composition_error, _fraction_error(structure, configuration))
        configurations.append(configuration)
    return ConfigurationSample(configurations, scaling, composition_error)


def one_configuration(structure: Structure, seed: int) -> tuple[Structure, np.ndarray]:
    """``structure`` itself when ordered, else one ordered configuration of it (:func:`sample_configurations`
    with ``seed``), with the diagonal multipliers of the parent cell that it spans.

    Raises:
        ValueError: as :func:`sample_configurations`.
    """
    if structure.is_ordered:
        return structure, np.ones(3, dtype=int)
    sample = sample_configurations(structure, 1, seed=seed)
    return sample.structures[0], np.array(sample.supercell_scaling)


def _fraction_error(parent: Structure, configuration: Structure) -> float:
    """Largest absolute difference, over elements, of the atom fractions of two structures."""
    ideal = parent.composition.element_composition.fractional_composition
    actual = configuration.composition.element_composition.fractional_composition
    return max(abs(actual[element] - ideal[element]) for element in set(ideal) | set(actual))


def _shortfall_message(
    structure: Structure,
    supercell: Structure,
    groups: list[tuple[list[int], dict[str, int]]],
    short: list[tuple[int, int, int]],
    min_distance_A: float,
) -> str:
    """Why the occupancies cannot be realised: per short group, the atoms asked for and those that fit."""
    parts = []
    for g, wanted, placed in short:
        sites = groups[g][0]
        parts.append(
            f"{wanted} atoms on {len(sites)} positions of {supercell[sites[0]].species} but no more than "
            f"{placed} fit"
        )
    return (
        f"the published occupancies of {structure.composition.reduced_formula} ask for more atoms than its "
        f"split positions can hold: positions closer than {min_distance_A:g} angstrom hold one atom at a "
        f"time, and in a {len(supercell)}-site supercell " + "; ".join(parts) + f" ({MAX_PLACEMENT_TRIES} "
        f"placements tried; more than {MAX_EXCLUSION_SHORTFALL:.0%} of the atoms would be missing)"
    )


def _conflicts(supercell: Structure, min_distance_A: float) -> dict[int, set[int]]:
    """Each site's split positions (:func:`screening.split_positions.split_position_pairs`): the sites
    that may not hold an atom while it does."""
    if min_distance_A <= 0:
        return {}
    centers, neighbors, _, distances_A = supercell.get_neighbor_list(min_distance_A)
    total_occupancy = np.array([site.species.num_atoms for site in supercell])
    split = split_position_pairs(distances_A, centers, neighbors, total_occupancy, min_distance_A)
    conflicts: dict[int, set[int]] = {}
    for i, j in zip(centers[split].tolist(), neighbors[split].tolist(), strict=True):
        if i != j:
            conflicts.setdefault(i, set()).add(j)
    return conflicts


def _draw(
    groups: list[tuple[list[int], dict[str, int]]],
    conflicts: dict[int, set[int]],
    n_sites: int,
    rng: np.random.Generator,
) -> tuple[list[str], list[tuple[int, int, int]]]:
    """One configuration: a label per supercell site (``""`` = vacancy), and the groups left short.

    Without conflicting pairs, each group's labels are a random permutation over its sites. With them,
    sites are visited in random order and a site is filled while its group still needs atoms and no
    conflicting neighbour is filled (random sequential placement); a draw that leaves a group short is
    retried, up to :data:`MAX_PLACEMENT_TRIES` times. When every try leaves a group short (split
    positions whose occupancies add up to more than one atom), the try that placed the most atoms is
    kept, each short group's atoms cut in proportion to its species; the second value then lists
    ``(group index, atoms wanted, atoms placed)`` for each short group (empty for a complete draw).
    """
    best: tuple[int, list[list[int]]] | None = None
    for _ in range(MAX_PLACEMENT_TRIES if conflicts else 1):
        species = [_VACANCY] * n_sites
        occupied: set[int] = set()
        complete = True
        chosen_by_group: list[tuple[list[int], list[str]]] = []
        for _sites, counts in groups:
            chosen_by_group.append(([], _atom_labels(counts)))
        order = [(g, site) for g, (sites, _) in enumerate(groups) for site in sites]
        for position in rng.permutation(len(order)):
            g, site = order[position]
            chosen, atoms = chosen_by_group[g]
            if len(chosen) < len(atoms) and not (conflicts.get(site, set()) & occupied):
                chosen.append(site)
                occupied.add(site)
        placed = sum(len(chosen) for chosen, _ in chosen_by_group)
        if best is None or placed > best[0]:
            best = (placed, [list(chosen) for chosen, _ in chosen_by_group])
        for chosen, atoms in chosen_by_group:
            if len(chosen) < len(atoms):
                complete = False
                break
            for site, label in zip(chosen, rng.permutation(atoms), strict=True):
                species[site] = str(label)
        if complete:
            return species, []
    assert best is not None
    species = [_VACANCY] * n_sites
    short: list[tuple[int, int, int]] = []
    for g, ((_sites, counts), chosen) in enumerate(zip(groups, best[1], strict=True)):
        atoms = _atom_labels(counts)
        if len(chosen) < len(atoms):
            short.append((g, len(atoms), len(chosen)))
            atoms = _cut_in_proportion(counts, len(chosen))
        for site, label in zip(chosen, rng.permutation(atoms), strict=True):
            species[site] = str(label)
    return species, short


def _cut_in_proportion(counts: dict[str, int], n_atoms: int) -> list[str]:
    """``n_atoms`` labels drawn from a group's atom ``counts`` (vacancies left out) in proportion to
    them, largest remainders first: the atoms of a short group that do fit."""
    labels = [label for label, count in counts.items() if label != _VACANCY and count]
    wanted = np.array([counts[label] for label in labels], dtype=float)
    kept = _largest_remainder(wanted * n_atoms / wanted.sum(), n_atoms)
    return _atom_labels(dict(zip(labels, kept.tolist(), strict=True)))
