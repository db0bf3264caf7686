"""Bond-valence sums of (possibly disordered) crystal structures, as a plausibility test of published data.

The bond valence of a cation-anion bond of length ``d`` is ``v = exp((R0 - d) / b)`` and the sum over the
bonds of an ion approximates the magnitude of its oxidation state (I. D. Brown, D. Altermatt, Acta Cryst.
B 41, 244 (1985)). ``R0`` comes from the element parameters ``r`` and ``c`` of N. E. Brese and M.
O'Keeffe, Acta Cryst. B 47, 192 (1991), as tabulated in pymatgen's ``BV_PARAMS``:

    R0 = r_i + r_j - r_i r_j (sqrt(c_i) - sqrt(c_j))^2 / (c_i r_i + c_j r_j)

with the universal ``b = 0.37`` angstrom of that paper. (pymatgen's own ``calculate_bv_sum`` divides by
0.31, which does not belong to these ``R0``: it underestimates every sum of long, weak bonds.)

The element-based ``R0`` ignore the oxidation state and are known to be off for small, highly charged
cations: for P5+-O it gives 1.697 A instead of the fitted 1.617 A, so a correct phosphate (LiFePO4) would
read P 6.2 instead of 5. For the pairs in :data:`R0_OXIDATION_SPECIFIC_A` the fitted, oxidation-state
specific values of the standard tables are used instead.

Disorder: the contribution of a neighbouring site is weighted by the occupancy of each of its species,
so a sum is the valence an ion receives on average. Only pairs of a cation and an anion (opposite signs
of the oxidation states) count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pymatgen.analysis.bond_valence import BV_PARAMS
from pymatgen.core import Element, Structure

from screening.structures import is_partially_occupied

#: Softness parameter of the Brese-O'Keeffe bond-valence parameters (angstrom).
BV_B_A = 0.37

#: Neighbours up to this distance contribute to a sum (angstrom); a bond at R0 + 1.7 A has v < 0.01.
BV_CUTOFF_A = 4.5

#: Relative tolerances of :func:`bond_valence_deviations`. Anions get 30 %: the element-based parameters
#: put the large, soft anions of textbook binaries 25 % low (I- in rock-salt LiI, a = 6.00 A; P3- in Li3P).
FRAMEWORK_CATION_TOLERANCE = 0.15
ANION_TOLERANCE = 0.30
MOBILE_CATION_TOLERANCE = 0.35

#: Cations whose partially occupied sites are the mobile, split or vacancy-rich ones in ionic
#: conductors; their sums are checked with :data:`MOBILE_CATION_TOLERANCE` when a site is fully
#: occupied and not at all when it is partially occupied.
MOBILE_ELEMENTS = frozenset({"Li", "Na", "K", "Ag", "Cu"})


#: Fitted ``R0`` (angstrom, b = 0.37) of (cation, oxidation state, anion) from I. D. Brown, D. Altermatt,
#: Acta Cryst. B 41, 244 (1985) (P, Si, Al, Ge, Zn, Sn) and N. E. Brese, M. O'Keeffe, Acta Cryst. B 47, 192
#: (1991) (Ni), used where the element-based formula is off by more than 0.03 A. Each reproduces its
#: textbook structure: P-O 1.54 A x4 in LiFePO4 -> 4.9, Si-O 1.61 A x4 in quartz -> 4.1, Al-O 1.86/1.97 A
#: in corundum -> 3.0, Zn-O 1.98 A x4 in ZnO -> 1.9, Sn-O 2.05 A x6 in SnO2 -> 4.1, Ni-O 1.97 A x6 in
#: LiNiO2 -> 2.8.
R0_OXIDATION_SPECIFIC_A: dict[tuple[str, int, str], float] = {
    ("P", 5, "O"): 1.617,
    ("Si", 4, "O"): 1.624,
    ("Al", 3, "O"): 1.651,
    ("Ge", 4, "O"): 1.748,
    ("Zn", 2, "O"): 1.704,
    ("Sn", 4, "O"): 1.905,
    ("Ni", 2, "O"): 1.654,
    ("Ni", 3, "O"): 1.686,
}


def bond_valence_R0_A(cation: str, anion: str, cation_charge: float | None = None) -> float:
    """``R0`` (angstrom, for b = :data:`BV_B_A`) of a cation-anion pair of element symbols: the fitted
    value of :data:`R0_OXIDATION_SPECIFIC_A` when the pair is listed there, else the Brese-O'Keeffe
    element-based value."""
    if cation_charge is not None and float(cation_charge).is_integer():
        fitted = R0_OXIDATION_SPECIFIC_A.get((cation, int(cation_charge), anion))
        if fitted is not None:
            return fitted
    try:
        p1, p2 = BV_PARAMS[Element(cation)], BV_PARAMS[Element(anion)]
    except KeyError as error:
        raise ValueError(f"no bond-valence parameters for {cation}-{anion}") from error
    r1, r2, c1, c2 = p1["r"], p2["r"], p1["c"], p2["c"]
    return r1 + r2 - r1 * r2 * (math.sqrt(c1) - math.sqrt(c2)) ** 2 / (c1 * r1 + c2 * r2)


def _charge(specie) -> float:
    charge = getattr(specie, "oxi_state", None)
    if charge is None:
        raise ValueError(f"species {specie} has no oxidation state")
    return float(charge)


def bond_valence_sums(structure: Structure, cutoff_A: float = BV_CUTOFF_A) -> list[dict[str, float]]:
    """Occupancy-weighted bond-valence sum of every species on every site.

    Args:
        structure: structure whose species carry oxidation states (``Li+``, ``O2-``).
        cutoff_A: neighbour cutoff.

    Returns:
        One dict per site: species string -> bond-valence sum (a positive number, to be compared with the
        magnitude of the oxidation state). Species with oxidation state 0 get 0.

    Raises:
        ValueError: a species without oxidation state or without bond-valence parameters.
    """
    centres, neighbours, _, distances_A = structure.get_neighbor_list(cutoff_A)
    sums: list[dict[str, float]] = [{str(sp): 0.0 for sp in site.species} for site in structure]
    for i, j, d_A in zip(centres, neighbours, distances_A, strict=True):
        for sp_i in structure[i].species:
            q_i = _charge(sp_i)
            for sp_j, occ_j in structure[j].species.items():
                q_j = _charge(sp_j)
                if q_i * q_j >= 0:
                    continue
                cation, anion = (sp_i, sp_j) if q_i > 0 else (sp_j, sp_i)
                r0_A = bond_valence_R0_A(cation.symbol, anion.symbol, cation.oxi_state)
                sums[i][str(sp_i)] += occ_j * math.exp((r0_A - d_A) / BV_B_A)
    return sums


@dataclass(frozen=True)
class BVSDeviation:
    """A site whose bond-valence sum is off its oxidation state.

    Attributes:
        index: site index.
        species: the site's species string.
        bvs: occupancy-weighted mean bond-valence sum of the site's species.
        valence: occupancy-weighted mean magnitude of their oxidation states.
        tolerance: relative tolerance that was exceeded.
    """

    index: int
    species: str
    bvs: float
    valence: float
    tolerance: float

    @property
    def relative_deviation(self) -> float:
        """(bvs - valence) / valence."""
        return (self.bvs - self.valence) / self.valence

    def __str__(self) -> str:
        return (
            f"site {self.index} ({self.species}): BVS {self.bvs:.2f} vs valence {self.valence:.2f} "
            f"({100 * self.relative_deviation:+.0f} %, tolerance {100 * self.tolerance:.0f} %)"
        )


def _site_tolerance(species: Mapping, cation: bool) -> float | None:
    """Tolerance for one site, or None if the site is not checked."""
    if not cation:
        return ANION_TOLERANCE
    framework_occupancy = sum(occ for sp, occ in species.items() if sp.symbol not in MOBILE_ELEMENTS)
    if framework_occupancy >= 0.5 - 1e-6:
        return FRAMEWORK_CATION_TOLERANCE
    if framework_occupancy == 0 and not is_partially_occupied(sum(species.values())):
        return MOBILE_CATION_TOLERANCE
    return None  # a partially occupied mobile-ion site, or a minority dopant on one


def bond_valence_deviations(structure: Structure) -> list[BVSDeviation]:
    """Sites whose bond-valence sum misses the oxidation state by more than the tolerance.

    Sites whose framework cations (every cation but Li, Na, K, Ag, Cu) fill at least half of the site:
    within :data:`FRAMEWORK_CATION_TOLERANCE`; anions: within :data:`ANION_TOLERANCE`; sites fully
    occupied by mobile cations: within :data:`MOBILE_CATION_TOLERANCE` (conducting ions are often
    under-bonded); partially occupied mobile-ion sites, also with a minority dopant (Al or Ga on the garnet
    24d site), are not checked: split-site models put them at averaged positions. For a mixed site the
    occupancy-weighted mean sum is compared with the occupancy-weighted mean valence.
    """
    deviations = []
    for index, (site, sums) in enumerate(zip(structure, bond_valence_sums(structure), strict=True)):
        occupancy = site.species.num_atoms
        charges = [_charge(sp) for sp in site.species]
        if all(q == 0 for q in charges):
            continue
        cation = all(q > 0 for q in charges)
        if not cation and not all(q < 0 for q in charges):
            raise ValueError(f"site {index} ({site.species_string}) mixes cations and anions")
        tolerance = _site_tolerance(site.species, cation)
        if tolerance is None:
            continue
        bvs = sum(occ * sums[str(sp)] for sp, occ in site.species.items()) / occupancy
        valence = sum(occ * abs(_charge(sp)) for sp, occ in site.species.items()) / occupancy
        if abs(bvs - valence) > tolerance * valence:
            deviations.append(BVSDeviation(index, site.species_string, bvs, valence, tolerance))
    return deviations
