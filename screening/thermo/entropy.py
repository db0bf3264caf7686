"""Ideal configurational entropy of disordered structures.

For independent sites with occupation probabilities ``p`` (vacancies counted as a species of their
sublattice), the ideal mixing entropy is ``S = -k_B sum_sites sum_s p ln p``. Energies here are per atom,
so it is divided by the number of atoms (the occupied part of the sites, vacancies excluded). The
free-energy term at temperature T is ``-T * S`` (eV/atom, never positive). Short-range order lowers the
real entropy, so this is an upper bound on the stabilisation by disorder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pymatgen.core import Composition, Structure
from pymatgen.core.periodic_table import get_el_sp

from screening.constants import BOLTZMANN_eV_PER_K
from screening.schema import VACANCY
from screening.structures import OCCUPANCY_TOLERANCE
from screening.thermo.errors import ThermoError

#: Boltzmann constant (eV/K), CODATA 2018.

#: Occupancies of a site may sum to 1 plus this (rounding in published CIFs).

#: Largest difference in atomic fraction allowed between the site occupancies and the composition.
COMPOSITION_TOLERANCE = 1e-3

SiteOccupancies = Sequence[Mapping[str, float]]


def site_occupancies_from_structure(structure: Structure) -> list[dict[str, float]]:
    """Per-site occupancies ``{species: probability}`` of a (possibly disordered) structure; the vacancy
    of a partially occupied site is implied by ``1 - sum``."""
    return [{str(sp): float(occ) for sp, occ in site.species.items()} for site in structure]


def _site_probabilities(site: Mapping[str, float], index: int) -> dict[str, float]:
    probabilities = {str(sp): float(p) for sp, p in site.items() if str(sp) != VACANCY}
    if any(not math.isfinite(p) or p < 0 for p in probabilities.values()):
        raise ThermoError(f"site {index}: occupancies must be finite and non-negative, got {dict(site)}")
    occupied = math.fsum(probabilities.values())
    vacancy = float(site.get(VACANCY, max(0.0, 1.0 - occupied)))
    if occupied > 1.0 + OCCUPANCY_TOLERANCE or abs(occupied + vacancy - 1.0) > OCCUPANCY_TOLERANCE:
        raise ThermoError(f"site {index}: occupancies sum to {occupied + vacancy:.4f}, not 1")
    probabilities[VACANCY] = vacancy
    return probabilities


def configurational_entropy_per_atom_kB(
    site_occupancies: SiteOccupancies, composition: Composition | None = None
) -> float:
    """Ideal configurational entropy per atom, in units of k_B.

    Args:
        site_occupancies: one mapping ``{species: probability}`` per site of the cell (species as
            ``"Li"`` or ``"Li+"``; a ``"vacancy"`` key, or ``1 - sum``, gives the empty fraction).
        composition: if given, the site occupancies must add up to it (atomic fractions within
            :data:`COMPOSITION_TOLERANCE`), so the entropy belongs to the same material as the energy.

    Raises:
        ThermoError: for invalid occupancies, an empty cell, or a composition mismatch.
    """
    if len(site_occupancies) == 0:
        raise ThermoError("no site occupancies given")
    entropy_kB = 0.0
    amounts: dict[str, float] = {}
    for index, site in enumerate(site_occupancies):
        for species, p in _site_probabilities(site, index).items():
            if p > 0:
                entropy_kB -= p * math.log(p)
            if species != VACANCY:
                try:
                    symbol = get_el_sp(species).symbol
                except ValueError as exc:
                    raise ThermoError(f"site {index}: unknown species {species!r}") from exc
                amounts[symbol] = amounts.get(symbol, 0.0) + p
    n_atoms = math.fsum(amounts.values())
    if n_atoms <= 0:
        raise ThermoError("the site occupancies hold no atoms")
    if composition is not None:
        _check_composition(amounts, Composition(composition))
    return max(entropy_kB, 0.0) / n_atoms


def _check_composition(amounts: Mapping[str, float], composition: Composition) -> None:
    total = math.fsum(amounts.values())
    fractions = {el.symbol: composition.get_atomic_fraction(el) for el in composition.element_composition}
    for symbol in set(fractions) | set(amounts):
        difference = abs(amounts.get(symbol, 0.0) / total - fractions.get(symbol, 0.0))
        if difference > COMPOSITION_TOLERANCE:
            raise ThermoError(
                f"site occupancies do not match the composition {composition.reduced_formula} "
                f"({symbol}: atomic fraction differs by {difference:.4f})"
            )


def config_entropy_term_eV(
    site_occupancies: SiteOccupancies, temperature_K: float, composition: Composition | None = None
) -> float:
    """The free-energy term ``-T * S_config`` per atom (eV/atom) at ``temperature_K``."""
    if not math.isfinite(temperature_K) or temperature_K < 0:
        raise ThermoError(f"temperature must be finite and >= 0 K, got {temperature_K}")
    entropy_kB = configurational_entropy_per_atom_kB(site_occupancies, composition)
    return (
        0.0 - temperature_K * BOLTZMANN_eV_PER_K * entropy_kB
    )  # 0.0 - x: an ordered site gives 0.0, not -0.0
