"""Physical sanity checks of an input crystal structure, shared by every structure source.

:func:`validate_structure` lists what is wrong with a structure instead of raising, so that a source can
turn the list into the error message of a failed row. It knows about disorder: partially occupied split
sites (garnet 24d/96h, the Li sites of LGPS) legitimately sit closer to each other than two atoms ever
could, so the strict distance check only applies to pairs of sites that cannot both be empty, i.e. whose
occupancies add up to more than one; an absolute floor applies to every pair.
"""

from __future__ import annotations

import math

import numpy as np
from pymatgen.analysis.local_env import CovalentRadius
from pymatgen.core import Composition, Element, Structure

from screening.structures import OCCUPANCY_TOLERANCE

#: No two site centres may be closer than this, whatever their occupancies (angstrom).
MIN_SITE_DISTANCE_A = 0.5

#: Two sites that are both (jointly more than singly) occupied must be at least this fraction of the sum
#: of their covalent radii apart.
COVALENT_FRACTION = 0.7

#: Two split sites count as possibly occupied together only when their occupancies add up to more than
#: 1 + this; below it the sum is within the usual uncertainty of refined occupancies (garnet 24d/96h Li
#: refine to 0.564 + 0.442).
PAIR_OCCUPANCY_TOLERANCE = 0.05

#: Allowed difference per element, in atoms per published formula unit, between the structure's
#: composition (partial occupancies counted as fractions) and the published formula.
COMPOSITION_TOLERANCE_ATOMS = 0.02

#: At most this many offending site pairs are spelled out in one message.
_MAX_PAIRS_REPORTED = 3

_FALLBACK_COVALENT_RADIUS_A = 1.5


def _covalent_radius_A(symbol: str) -> float:
    radius = CovalentRadius.radius.get(symbol)
    return float(radius) if radius is not None else _FALLBACK_COVALENT_RADIUS_A


def _site_radius_A(site) -> float:
    """Smallest covalent radius among the species of a site (the lenient choice for mixed sites)."""
    return min(_covalent_radius_A(sp.symbol) for sp in site.species)


def _unknown_species(structure: Structure) -> list[str]:
    unknown = set()
    for site in structure:
        for specie in site.species:
            symbol = getattr(specie, "symbol", str(specie))
            if not Element.is_valid_symbol(symbol):
                unknown.add(str(specie))
    return sorted(unknown)


def _occupancy_problems(structure: Structure) -> list[str]:
    problems = []
    for index, site in enumerate(structure):
        amounts = list(site.species.values())
        total = math.fsum(amounts)
        if any(amount < 0 for amount in amounts):
            problems.append(f"site {index} ({site.species_string}) has a negative occupancy")
        if total > 1 + OCCUPANCY_TOLERANCE:
            problems.append(f"site {index} ({site.species_string}) has total occupancy {total:.4f} > 1")
        if total <= 0:
            problems.append(f"site {index} is empty (total occupancy {total:g})")
    return problems


def _distance_problems(structure: Structure) -> list[str]:
    """Site pairs that are too close: always below :data:`MIN_SITE_DISTANCE_A`; below
    :data:`COVALENT_FRACTION` times the sum of covalent radii when their occupancies add up to more than
    1 + :data:`PAIR_OCCUPANCY_TOLERANCE` (then both must sometimes be occupied at once)."""
    radii_A = np.array([_site_radius_A(site) for site in structure])
    occupancies = np.array([site.species.num_atoms for site in structure])
    cutoff_A = max(MIN_SITE_DISTANCE_A, COVALENT_FRACTION * 2 * float(radii_A.max()))
    centres, neighbours, _, distances_A = structure.get_neighbor_list(cutoff_A)
    offending: list[tuple[int, int, float, float]] = []
    for i, j, d_A in zip(centres, neighbours, distances_A, strict=True):
        if i > j:
            continue  # each pair once (periodic images of a site with itself have i == j)
        strict = occupancies[i] + occupancies[j] > 1 + PAIR_OCCUPANCY_TOLERANCE
        limit_A = MIN_SITE_DISTANCE_A
        if strict:
            limit_A = max(limit_A, COVALENT_FRACTION * (radii_A[i] + radii_A[j]))
        if d_A < limit_A:
            offending.append((int(i), int(j), float(d_A), float(limit_A)))
    if not offending:
        return []
    shown = "; ".join(
        f"sites {i} ({structure[i].species_string}) and {j} ({structure[j].species_string}) "
        f"{d_A:.3f} A apart (minimum {limit_A:.2f} A)"
        for i, j, d_A, limit_A in sorted(offending, key=lambda item: item[2])[:_MAX_PAIRS_REPORTED]
    )
    return [f"{len(offending)} site pair(s) too close: {shown}"]


def composition_mismatch(
    composition: Composition, expected_formula: str, tolerance_atoms: float = COMPOSITION_TOLERANCE_ATOMS
) -> str | None:
    """Compare a (possibly fractional) composition with a published formula.

    The composition is scaled to the number of atoms in ``expected_formula`` and then each element must
    agree within ``tolerance_atoms`` atoms per formula unit.

    Returns:
        None if they agree, else a message naming the elements that differ.
    """
    expected = Composition(expected_formula)
    actual = composition.element_composition
    expected = expected.element_composition
    if actual.num_atoms <= 0:
        return "structure has no atoms"
    scale = expected.num_atoms / actual.num_atoms
    differences = []
    for element in sorted({*actual.elements, *expected.elements}, key=lambda el: el.symbol):
        have, want = actual[element] * scale, expected[element]
        if abs(have - want) > tolerance_atoms:
            differences.append(f"{element.symbol} {have:.4g} (expected {want:.4g})")
    if not differences:
        return None
    return f"composition does not match {expected_formula}: " + ", ".join(differences)


def validate_structure(structure: Structure, expected_formula: str | None = None) -> list[str]:
    """List the physical problems of a structure (empty list: it passed).

    Checks: at least one site; a finite cell of positive volume; only real chemical elements; per-site
    occupancies non-negative and not above 1 (+ :data:`screening.structures.OCCUPANCY_TOLERANCE`);
    no two site centres closer than :data:`MIN_SITE_DISTANCE_A`, nor closer than
    :data:`COVALENT_FRACTION` times the sum of their covalent radii when their occupancies add up to more
    than 1 (+ :data:`PAIR_OCCUPANCY_TOLERANCE`); and, if ``expected_formula`` is given, the composition (partial occupancies counted as
    fractions) matches it per :func:`composition_mismatch`.

    Args:
        structure: an ordered or disordered pymatgen structure.
        expected_formula: the published formula, e.g. ``"Li6.4La3Zr1.4Ta0.6O12"``.

    Returns:
        Human-readable problem descriptions.
    """
    if len(structure) == 0:
        return ["structure has no sites"]
    volume_A3 = structure.lattice.volume
    if not (math.isfinite(volume_A3) and volume_A3 > 1e-6):
        return [f"cell volume {volume_A3:g} A^3 is not positive"]
    unknown = _unknown_species(structure)
    if unknown:
        return [f"unknown element(s): {', '.join(unknown)}"]
    problems = _occupancy_problems(structure)
    problems += _distance_problems(structure)
    if expected_formula is not None:
        try:
            mismatch = composition_mismatch(structure.composition, expected_formula)
        except ValueError as error:
            mismatch = f"cannot parse expected formula {expected_formula!r}: {error}"
        if mismatch:
            problems.append(mismatch)
    return problems
