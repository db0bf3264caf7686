"""Physical sanity checks of an input crystal structure, shared by every structure source.

Published structures of ionic conductors are disordered on purpose: split positions closer than two
atoms could ever be (garnet 24d/96h, the Li pairs of argyrodites), mixed sites, and coordinates that carry
refinement or deliberate noise (OBELiX adds sigma = 0.01 fractional noise to every CIF, shortening some
bonds by 0.2-0.4 A). :func:`check_structure` therefore sorts what it finds into two lists:

* ``problems``: the structure cannot be used. No sites; a cell or a coordinate that is not a finite
  number; a cell without volume; an unknown element; one site with a negative occupancy, a total
  occupancy above 1 (+ :data:`screening.structures.OCCUPANCY_TOLERANCE`) or none at all; two fully
  occupied sites on top of each other (closer than :data:`OVERLAP_FRACTION` of the sum of their covalent
  radii, and never closer than :data:`MIN_SITE_DISTANCE_A`).
* ``warnings``: it is kept, with a note. Split positions whose occupancies add up to more than one
  (they must sometimes both be filled), and groups of three or more split positions asking for more
  atoms than they hold at once (three O 0.5 positions 0.7 A apart: 1.5 O where one fits); contacts
  shorter than :data:`COVALENT_FRACTION` of the covalent radii between sites that are sometimes occupied
  together; split positions closer than :data:`MIN_SITE_DISTANCE_A`; a composition that differs from the
  published formula; bond-valence sums off the oxidation states (when the structure carries them).

Each message starts with a short fixed phrase naming its kind (``"split positions overfilled: ..."``,
``"short contacts: ..."``), so that warnings can be counted by kind.

Split positions are those of :mod:`screening.split_positions`, the definition the configuration sampler
(:func:`screening.models.disorder.sample_configurations`) follows: two partially occupied sites closer
than :data:`~screening.split_positions.SPLIT_POSITION_DISTANCE_A` hold at most one atom between them.
Where their occupancies add up to more than one, an ordered configuration cannot both respect that and
reproduce the published occupancies of the pair, which is what the ``split positions overfilled`` warning
says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.analysis.local_env import CovalentRadius
from pymatgen.core import Composition, Element, Structure

from screening.split_positions import SPLIT_POSITION_DISTANCE_A, split_position_pairs
from screening.structures import OCCUPANCY_TOLERANCE, failed_row, is_partially_occupied, structure_to_row

#: Split positions closer than this hold at most one atom between them; two fully occupied sites are
#: never allowed closer than this (angstrom).
MIN_SITE_DISTANCE_A = 0.5

#: Two fully occupied sites closer than this fraction of the sum of their covalent radii sit on top of
#: each other (O-F 0.68 A, P-O 0.95 A, Li-O 1.07 A): the structure cannot be used. The shortest bonds of
#: the noisy OBELiX CIFs reach 0.64 of the sum (P-O 1.11 A); broken ones lie at 0.52.
OVERLAP_FRACTION = 0.55

#: Two sites that are sometimes occupied together (occupancies adding up to more than one) closer than
#: this fraction of the sum of their covalent radii make a short contact (a warning).
COVALENT_FRACTION = 0.7

#: Two sites count as sometimes occupied together only when their occupancies add up to more than
#: 1 + this; below it the sum is within the usual uncertainty of refined occupancies (garnet 24d/96h Li
#: refine to 0.564 + 0.442).
PAIR_OCCUPANCY_TOLERANCE = 0.05

#: Allowed difference per element, in atoms per published formula unit, between the structure's
#: composition (partial occupancies counted as fractions) and the published formula.
COMPOSITION_TOLERANCE_ATOMS = 0.02

#: At most this many offending sites or site pairs are spelled out in one message.
_MAX_REPORTED = 3

_FALLBACK_COVALENT_RADIUS_A = 1.5


@dataclass(frozen=True)
class StructureCheck:
    """What :func:`check_structure` found.

    Attributes:
        problems: reasons the structure cannot be used (empty: it can).
        warnings: oddities of a usable structure, each starting with its kind
            (``"short contacts: ..."``).
    """

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the structure can be used."""
        return not self.problems


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


def _listed(items: list[str], total: int | None = None) -> str:
    total = len(items) if total is None else total
    shown = "; ".join(items[:_MAX_REPORTED])
    return shown + (f"; and {total - _MAX_REPORTED} more" if total > _MAX_REPORTED else "")


def _cell_problems(structure: Structure) -> list[str]:
    matrix = structure.lattice.matrix
    if not np.isfinite(matrix).all():
        return ["the cell has a lattice vector component that is NaN or infinite"]
    coords = np.asarray(structure.cart_coords, dtype=float).reshape(-1, 3)
    bad = [i for i, row in enumerate(coords) if not np.isfinite(row).all()]
    if bad:
        sites = [f"site {i} ({structure[i].species_string})" for i in bad]
        return [f"NaN or infinite coordinate at {len(bad)} site(s): {_listed(sites)}"]
    volume_A3 = structure.lattice.volume
    if not (math.isfinite(volume_A3) and volume_A3 > 1e-6):
        return [f"cell volume {volume_A3:g} A^3 is not positive (lattice vectors in one plane?)"]
    return []


def _occupancy_problems(structure: Structure) -> list[str]:
    problems = []
    for index, site in enumerate(structure):
        amounts = list(site.species.values())
        total = math.fsum(amounts)
        if any(amount < 0 for amount in amounts):
            problems.append(f"site {index} ({site.species_string}) has a negative occupancy")
        elif total > 1 + OCCUPANCY_TOLERANCE:
            problems.append(f"site {index} ({site.species_string}) has total occupancy {total:.4f} > 1")
        elif total <= 0:
            problems.append(f"site {index} is empty (total occupancy {total:g})")
    return problems


def _pair_findings(structure: Structure) -> tuple[list[str], list[str]]:
    """Problems and warnings about pairs of sites that are close (see the module docstring)."""
    radii_A = np.array([_site_radius_A(site) for site in structure])
    occupancies = np.array([site.species.num_atoms for site in structure])
    partial = is_partially_occupied(occupancies)
    cutoff_A = max(SPLIT_POSITION_DISTANCE_A, COVALENT_FRACTION * 2 * float(radii_A.max()))
    centres, neighbours, _, distances_A = structure.get_neighbor_list(cutoff_A)
    split = split_position_pairs(distances_A, centres, neighbours, occupancies)
    kinds: dict[str, list[tuple[float, str]]] = {}

    def note(kind: str, i: int, j: int, d_A: float, detail: str) -> None:
        text = (
            f"sites {i} ({structure[i].species_string}) and {j} ({structure[j].species_string}) "
            f"{d_A:.3f} A apart{detail}"
        )
        kinds.setdefault(kind, []).append((d_A, text))

    pairs = zip(centres.tolist(), neighbours.tolist(), distances_A.tolist(), split.tolist(), strict=True)
    for i, j, d_A, is_split in pairs:
        if i > j:
            continue  # each pair once (periodic images of a site with itself have i == j)
        radii_sum_A = radii_A[i] + radii_A[j]
        occ_i, occ_j = occupancies[i], occupancies[j]
        together = occ_i + occ_j > 1 + PAIR_OCCUPANCY_TOLERANCE
        if not partial[i] and not partial[j]:
            overlap_A = max(MIN_SITE_DISTANCE_A, OVERLAP_FRACTION * radii_sum_A)
            if d_A < overlap_A:
                note("overlap", i, j, d_A, f" (minimum {overlap_A:.2f} A)")
            elif d_A < COVALENT_FRACTION * radii_sum_A:
                note("short", i, j, d_A, f" (usual minimum {COVALENT_FRACTION * radii_sum_A:.2f} A)")
        elif together and is_split:
            note("overfilled", i, j, d_A, f", occupancies adding up to {occ_i + occ_j:.3g}")
        elif together and d_A < max(MIN_SITE_DISTANCE_A, COVALENT_FRACTION * radii_sum_A):
            limit_A = max(MIN_SITE_DISTANCE_A, COVALENT_FRACTION * radii_sum_A)
            note(
                "short", i, j, d_A, f" (usual minimum {limit_A:.2f} A, occupancies {occ_i:.3g} + {occ_j:.3g})"
            )
        elif d_A < MIN_SITE_DISTANCE_A:
            note("split", i, j, d_A, "")

    def message(kind: str, head: str, why: str) -> list[str]:
        found = sorted(kinds.get(kind, []))
        if not found:
            return []
        return [f"{head}: {len(found)} site pair(s) too close ({why}): " + _listed([t for _, t in found])]

    problems = message("overlap", "atoms on top of each other", "both fully occupied")
    warnings = message(
        "overfilled",
        "split positions overfilled",
        f"closer than {SPLIT_POSITION_DISTANCE_A:g} A, so at most one holds an atom, but their occupancies "
        "add up to more than 1",
    )
    warnings += _overfilled_groups(structure, occupancies, centres[split], neighbours[split])
    warnings += message(
        "short",
        "short contacts",
        f"sites occupied at the same time, closer than {COVALENT_FRACTION:g} "
        "of the sum of their covalent radii",
    )
    warnings += message(
        "split",
        "split positions very close",
        f"closer than {MIN_SITE_DISTANCE_A:g} A, never occupied together",
    )
    return problems, warnings


def _overfilled_groups(
    structure: Structure, occupancies: np.ndarray, centres: np.ndarray, neighbours: np.ndarray
) -> list[str]:
    """Groups of three or more split positions (sites linked by the split-position pairs ``centres`` -
    ``neighbours``) whose occupancies add up to more atoms than the group can hold at once, the most sites
    no two of which are linked: a triangle of O 0.5 positions 0.7 A apart asks for 1.5 O where one fits.
    Groups above :data:`_MAX_GROUP_SITES` are not searched."""
    links: dict[int, set[int]] = {}
    for i, j in zip(centres.tolist(), neighbours.tolist(), strict=True):
        if i != j:
            links.setdefault(i, set()).add(j)
            links.setdefault(j, set()).add(i)
    found: list[str] = []
    seen: set[int] = set()
    for start in sorted(links):
        if start in seen:
            continue
        group, stack = set(), [start]
        while stack:
            site = stack.pop()
            if site not in group:
                group.add(site)
                stack.extend(links[site] - group)
        seen |= group
        if not 3 <= len(group) <= _MAX_GROUP_SITES:
            continue
        asked = float(occupancies[sorted(group)].sum())
        fits = _most_unlinked(frozenset(group), links)
        if asked > fits + PAIR_OCCUPANCY_TOLERANCE:
            sites = ", ".join(f"{i} ({structure[i].species_string})" for i in sorted(group))
            found.append(f"sites {sites}: occupancies adding up to {asked:.3g}, room for {fits}")
    if not found:
        return []
    return [
        f"split positions overfilled: {len(found)} group(s) of 3 or more positions closer than "
        f"{SPLIT_POSITION_DISTANCE_A:g} A to each other, whose occupancies add up to more atoms than the group "
        "can hold at once: " + _listed(found)
    ]


#: Largest group of linked split positions searched for the atoms it can hold.
_MAX_GROUP_SITES = 24


def _most_unlinked(sites: frozenset[int], links: dict[int, set[int]]) -> int:
    """The largest number of ``sites`` no two of which are linked (a maximum independent set, by
    branching on the most linked site: fast for the small groups split positions form)."""
    if not sites:
        return 0
    site = max(sites, key=lambda s: (len(links[s] & sites), -s))
    if not links[site] & sites:
        return len(sites)
    without = _most_unlinked(sites - {site}, links)
    return max(without, 1 + _most_unlinked(sites - {site} - links[site], links))


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


def _bond_valence_warnings(structure: Structure) -> list[str]:
    """The bond-valence deviations of a structure whose species all carry oxidation states."""
    from screening.bond_valence import bond_valence_deviations

    if not all(getattr(sp, "oxi_state", None) is not None for site in structure for sp in site.species):
        return []
    try:
        deviations = bond_valence_deviations(structure)
    except ValueError:  # no parameters for a pair, or a site mixing cations and anions: not checked
        return []
    if not deviations:
        return []
    return [f"bond-valence sums off at {len(deviations)} site(s): " + _listed([str(d) for d in deviations])]


def check_structure(
    structure: Structure, expected_formula: str | None = None, *, bond_valence: bool = True
) -> StructureCheck:
    """Sort what is odd about a structure into problems (unusable) and warnings (kept); see the module
    docstring for the rules.

    Args:
        structure: an ordered or disordered pymatgen structure.
        expected_formula: the published formula, e.g. ``"Li6.4La3Zr1.4Ta0.6O12"``; a mismatch is a
            warning.
        bond_valence: also compare bond-valence sums with the oxidation states (only done when every
            species carries one).

    Returns:
        The problems and warnings, as sentences for a scientist.
    """
    if len(structure) == 0:
        return StructureCheck(problems=["structure has no sites"])
    problems = _cell_problems(structure)
    if problems:
        return StructureCheck(problems=problems)
    unknown = _unknown_species(structure)
    if unknown:
        return StructureCheck(problems=[f"unknown element(s): {', '.join(unknown)}"])
    problems = _occupancy_problems(structure)
    if problems:
        return StructureCheck(problems=problems)
    problems, warnings = _pair_findings(structure)
    if expected_formula is not None:
        try:
            mismatch = composition_mismatch(structure.composition, expected_formula)
        except ValueError as error:
            mismatch = f"cannot parse expected formula {expected_formula!r}: {error}"
        if mismatch:
            warnings.append(mismatch)
    if bond_valence and not problems:
        warnings += _bond_valence_warnings(structure)
    return StructureCheck(problems=problems, warnings=warnings)


def validate_structure(structure: Structure, expected_formula: str | None = None) -> list[str]:
    """The strict check for curated data (the bundled entries, the hull binaries): every problem and
    every warning of :func:`check_structure` (bond valence left out; the bundled source checks it
    separately), as one list. Empty: the structure passed.

    Args:
        structure: an ordered or disordered pymatgen structure.
        expected_formula: the published formula, e.g. ``"Li6.4La3Zr1.4Ta0.6O12"``.
    """
    check = check_structure(structure, expected_formula, bond_valence=False)
    return check.problems + check.warnings


def checked_row(
    structure: Structure,
    structure_id: str,
    source: str,
    *,
    expected_formula: str | None = None,
    warnings: list[str] | None = None,
    **labels: Any,
) -> dict[str, Any]:
    """The structures-table row of ``structure`` after :func:`check_structure`: a failed row with the
    problems as its error, or an ok row keeping the warnings (``warnings`` found earlier come first).
    Every source of rows goes through here, so every source applies the same rules."""
    check = check_structure(structure, expected_formula)
    found = [*(warnings or []), *check.warnings]
    if check.problems:
        return failed_row(structure_id, source, "; ".join(check.problems), warnings=found, **labels)
    return structure_to_row(structure, structure_id, source, warnings=found, **labels)
