"""Frenkel-pair formation energy with the run's pretrained potential.

For a fully occupied, ordered mobile-ion sublattice the carriers are thermal Frenkel pairs
(:mod:`screening.transport.carriers`). Their formation energy is computed as GNN potentials are used for
point defects: in a supercell at least ``supercell_min_length_A`` wide, one mobile ion is moved from its
site to the interstitial position found on the bond-valence landscape, as far from the vacancy as the
supercell allows (so the pair does not recombine), the positions are relaxed at fixed cell, and
``E_F = E(defective) - E(perfect)`` (same number of atoms, no chemical potential needed). Both energies
are those of minima: every relaxation must bring the forces below ``fmax_eV_per_A`` within ``max_steps``.
The perfect crystal is relaxed first (positions, cell kept), in its cell and then as the supercell,
displaced by a small seeded random rattle so that it does not stay on a symmetric saddle of the
potential, so the pair's energy holds no relaxation of the published coordinates; a pair that recombines
or does not converge is not used, and a perfect supercell that does not converge refuses the calculation
(the bond-valence estimate stands, with the reason in the row). Until 2026-12-05 each relaxation stopped
after 60 steps and the crystal was relaxed in its cell only: on OBELiX ``fwz`` the cell was still 0.38 eV
above its minimum, and the supercell has a lower minimum still, 1.5 eV below the relaxed cell repeated,
that the pair's relaxation then found; E_F came out as 0 (from the unrelaxed crystal) or 1.58 eV (pair
and host relaxed for different lengths), both artefacts of unconverged relaxations.
The Frenkel energy is that of the lowest pair, and the bond-valence ranking of the interstitials leaves
out the relaxation that decides it; relaxed from different interstitial minima, the pair ends in
different local minima of the potential. So it is relaxed from the ``interstitial_candidates`` lowest
distinct minima of the landscape (3 by default, symmetry images counted once) and the lowest energy is
kept. A pair's relaxation can also carry the host into a lower basin than the crystal's relaxation
found (a published structure far from the potential's equilibrium, or a sampled configuration of a
disordered one), which would make E_F negative; so the moved ion is put back into the vacancy of the
lowest pair's relaxed supercell and that relaxed too (unless another atom has moved into the vacancy),
and E_F is counted from the lower of the two perfect-crystal energies. The bond-valence estimate of
:func:`screening.transport.bvse.frenkel_energy_eV` lacks this relaxation and is the fallback where no
potential is at hand.

A disordered structure whose mobile-ion sublattice is nevertheless full (each ion spread over split
positions, as in the argyrodites' 48h doublets; or disorder in the framework only) is represented by one
ordered configuration drawn by the sampler the energy stage uses
(:func:`screening.models.disorder.sample_configurations`: occupancies kept, split positions never both
filled), seed ``configuration_seed``; the pair goes to the same positions of the parent cell, the
interstitial to its image farthest from the vacancy, as for an ordered structure. One configuration is
one draw of the local environment; the transport stage computes several and takes the mean of their
Frenkel fractions (:mod:`screening.transport.potential_frenkel`). This is the default
(``include_disordered``), so one rule holds for every full sublattice: the relaxed estimate wherever a
potential is at hand. The OBELiX figures of each version are in BENCHMARKS.md ("Transport physics");
with converged relaxations and interstitial candidates anywhere in the cell (86ed5eb) Spearman rho 0.53
and AUC 0.78; those measured before converged relaxations (e9f6093: 0.49, 0.78) rest on the
unconverged energies described above.
It costs: the configuration's cell is at least 8 A wide (about 100 atoms for an argyrodite; on the OBELiX
set, with 60-step relaxations, a median of 2.6 min per structure on a CPU core, up to 13 min; converged
relaxations take longer, 30 min for OBELiX's Li6PS5I ``ywe``; seconds on a GPU);
``include_disordered: false`` keeps the bond-valence estimate for disordered structures in a quick CPU
screen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Structure

from screening.errors import ScreeningError
from screening.transport.md import supercell_multiples

#: An ion this close to the vacated position after relaxation has refilled it (angstrom).
RECOMBINED_WITHIN_A = 0.7
#: The vacancy of a relaxed pair can take its ion back only if no atom is this close to it (angstrom):
#: shorter than any bond of the mobile ion, and far from the potentials' untrained short range.
FREE_VACANCY_A = 1.2


class DefectError(ScreeningError, RuntimeError):
    """The defect supercell could not be built or relaxed."""


@dataclass(frozen=True)
class DefectOptions:
    """Settings of the potential's Frenkel-pair calculation (nested in the run settings as ``defects``).

    Attributes:
        supercell_min_length_A: smallest perpendicular width of the defect supercell, angstrom.
        fmax_eV_per_A: force threshold of the fixed-cell relaxation, eV/angstrom.
        max_steps: step cap of each relaxation; a perfect crystal or a pair not relaxed to
            ``fmax_eV_per_A`` within it is not used (see the module docstring).
        rattle_A: standard deviation of the random displacements (seeded by ``configuration_seed``)
            that take the perfect supercell off a symmetric saddle before it is relaxed, angstrom.
        include_disordered: also compute it for a disordered structure with a full mobile-ion
            sublattice, through ordered configurations (see the module docstring); off: the
            bond-valence estimate for those (faster on a CPU).
        configuration_seed: seed of the ordered configuration that stands for a disordered structure
            (the transport stage's further configurations take the seeds after it).
        interstitial_candidates: the pair is relaxed from this many distinct interstitial positions,
            the bond-valence landscape's lowest first, and the lowest energy kept (see the module
            docstring); each one is one more relaxation of the defect supercell.
    """

    supercell_min_length_A: float = 7.0
    fmax_eV_per_A: float = 0.1
    max_steps: int = 400
    rattle_A: float = 0.02
    include_disordered: bool = True
    configuration_seed: int = 0
    interstitial_candidates: int = 3

    def __post_init__(self) -> None:
        if self.interstitial_candidates < 1:
            raise ValueError(
                f"defects.interstitial_candidates must be at least 1, got {self.interstitial_candidates}"
            )


def _farthest_image(
    frac: np.ndarray, origin: np.ndarray, multiples: np.ndarray, supercell: Structure
) -> np.ndarray:
    """The image of a parent-cell position inside the supercell farthest from ``origin`` (supercell frac)."""
    best, best_distance = None, -1.0
    for shift in np.ndindex(*multiples):
        candidate = (frac % 1.0 + np.array(shift)) / multiples
        distance = supercell.lattice.get_distance_and_image(origin, candidate)[0]
        if distance > best_distance:
            best, best_distance = candidate, distance
    return best  # type: ignore[return-value]


#: A fixed-cell relaxation: energy (eV) and structure reached, and whether the forces fell below the
#: threshold within the step cap.
Relaxation = Callable[[Structure], tuple[float, Structure, bool]]


def _relaxation(energy_model: Any, options: DefectOptions) -> Relaxation:
    """The relaxation every structure of the calculation gets: positions only (the cell is the crystal's),
    BFGS (few steps close to a minimum), ``options``' threshold and step cap, one calculator for all."""
    from screening.models import relax_structure

    calculator = energy_model.ase_calculator()

    def relax(structure: Structure) -> tuple[float, Structure, bool]:
        result = relax_structure(
            energy_model,
            structure,
            fmax_eV_per_A=options.fmax_eV_per_A,
            max_steps=options.max_steps,
            relax_cell=False,
            calculator=calculator,
            optimizer="BFGS",
        )
        return result.energy_eV, result.structure, result.converged

    return relax


def _rattled(structure: Structure, amplitude_A: float, seed: int) -> Structure:
    """``structure`` with every atom displaced by a seeded Gaussian of ``amplitude_A`` per component."""
    displacements = np.random.default_rng(seed).normal(0.0, amplitude_A, (len(structure), 3))
    return Structure(
        structure.lattice,
        structure.species,
        structure.cart_coords + displacements,
        coords_are_cartesian=True,
    )


#: Why a pair from one interstitial candidate is not used.
RECOMBINED, NOT_CONVERGED = "recombined", "not relaxed within the step cap"


def _relaxed_pair(
    supercell: Structure,
    vacated: int,
    interstitial: np.ndarray,
    mobile_ion: str,
    relax: Relaxation,
) -> tuple[float, Structure] | str:
    """Energy (eV) and relaxed structure of ``supercell`` with ion ``vacated`` moved to ``interstitial``
    (supercell frac; the moved ion is the last site), or why it is not used: :data:`RECOMBINED` if an ion
    fell back into the vacancy (that is the perfect crystal), :data:`NOT_CONVERGED` if the forces stayed
    above the threshold (its energy is not that of a minimum)."""
    defective = supercell.copy()
    defective.remove_sites([vacated])
    defective.append(mobile_ion, interstitial)
    energy_eV, relaxed, converged = relax(defective)
    mobile = [i for i, site in enumerate(relaxed) if site.specie.symbol == mobile_ion]
    if _nearest_A(relaxed, supercell[vacated].frac_coords, mobile) < RECOMBINED_WITHIN_A:
        return RECOMBINED
    return (energy_eV, relaxed) if converged else NOT_CONVERGED


def _nearest_A(structure: Structure, frac: np.ndarray, indices: list[int]) -> float:
    """Distance from ``frac`` to the nearest of the sites ``indices`` (periodic), angstrom."""
    return float(structure.lattice.get_all_distances(frac, structure.frac_coords[indices]).min())


def _refilled_host_eV(pair: Structure, vacancy_frac: np.ndarray, relax: Relaxation) -> float:
    """Energy (eV) of the relaxed pair's supercell with the moved ion put back into the vacancy, relaxed:
    the perfect crystal in the host basin the pair's relaxation reached; inf where another atom has
    moved into the vacancy (within ``FREE_VACANCY_A``), which leaves no room to put the ion back, or where
    the relaxation does not converge."""
    if _nearest_A(pair, vacancy_frac, list(range(len(pair) - 1))) < FREE_VACANCY_A:
        return math.inf
    host = pair.copy()
    host.replace(len(host) - 1, host[-1].specie, vacancy_frac)
    energy_eV, _, converged = relax(host)
    return energy_eV if converged else math.inf


def frenkel_energy_with_potential_eV(
    structure: Structure,
    mobile_ion: str,
    site_frac: np.ndarray,
    interstitial_candidates_frac: np.ndarray,
    energy_model: Any,
    options: DefectOptions = DefectOptions(),
) -> float:
    """Frenkel-pair formation energy of ``mobile_ion``, eV (never negative): the lowest over the first
    ``options.interstitial_candidates`` interstitial positions.

    Args:
        structure: ordered structure, or a disordered one (then one ordered configuration of it, see the
            module docstring); oxidation states ignored.
        mobile_ion: element symbol.
        site_frac: parent-cell fractional position of the site to vacate (the nearest mobile ion is taken;
            for a disordered structure, the parent is the disordered cell).
        interstitial_candidates_frac: parent-cell fractional positions of the interstitial, most likely
            first (the bond-valence ranking), shape (n, 3).
        energy_model: an ``EnergyModel`` of the registry (its ASE calculator is used).
        options: supercell and relaxation settings.

    Raises:
        DefectError: no ordered configuration can be drawn, every pair recombines, or the calculator
            fails.
    """
    from screening.models import one_configuration

    try:
        # parent cells along each axis of the structure computed on
        structure, parent_cells = one_configuration(structure, options.configuration_seed)
    except (ValueError, ScreeningError) as exc:
        raise DefectError(f"no ordered configuration for the defect calculation: {exc}") from exc
    plain = structure.copy()
    plain.remove_oxidation_states()
    relax = _relaxation(energy_model, options)
    candidates = np.atleast_2d(interstitial_candidates_frac)[: options.interstitial_candidates]
    try:
        # the perfect crystal at the potential's own positions first, so that the pair's energy holds
        # no relaxation of the published coordinates: the cell (a head start), then the supercell, off
        # any symmetric saddle, to a converged minimum
        _, plain, _ = relax(plain)
        cell_multiples = np.array(supercell_multiples(plain, options.supercell_min_length_A))
        rattled = _rattled(plain * cell_multiples, options.rattle_A, options.configuration_seed)
        e_perfect, supercell, converged = relax(rattled)
        if not converged:
            raise DefectError(
                f"the perfect {len(supercell)}-atom supercell did not relax to "
                f"{options.fmax_eV_per_A:g} eV/A within {options.max_steps} steps"
            )
        multiples = cell_multiples * parent_cells  # parent cells along each axis of the defect supercell
        site = np.asarray(site_frac) % 1.0 / multiples
        mobile = [i for i, s in enumerate(supercell) if s.specie.symbol == mobile_ion]
        distances = [
            supercell.lattice.get_distance_and_image(site, supercell[i].frac_coords)[0] for i in mobile
        ]
        vacated = mobile[int(np.argmin(distances))]
        vacancy = supercell[vacated].frac_coords
        relaxed_pairs = [
            _relaxed_pair(
                supercell,
                vacated,
                _farthest_image(frac, vacancy, multiples, supercell),
                mobile_ion,
                relax,
            )
            for frac in candidates
        ]
        pairs = [pair for pair in relaxed_pairs if not isinstance(pair, str)]
        if pairs:
            e_pair, lowest = min(pairs, key=lambda pair: pair[0])
            e_perfect = min(e_perfect, _refilled_host_eV(lowest, vacancy, relax))
    except DefectError:
        raise
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes the reason
        raise DefectError(f"defect relaxation failed: {type(exc).__name__}: {exc}") from exc
    if not pairs:
        raise DefectError(
            f"no Frenkel pair from {len(candidates)} interstitial position(s) in a {len(supercell)}-atom "
            f"supercell: {_counted(relaxed_pairs)} (a recombined pair needs a larger "
            "defects.supercell_min_length_A, an unconverged one a larger defects.max_steps)"
        )
    return max(0.0, e_pair - e_perfect)


def _counted(reasons: list[Any]) -> str:
    """``"2 recombined, 1 not relaxed within the step cap"``."""
    counts = {reason: reasons.count(reason) for reason in (RECOMBINED, NOT_CONVERGED) if reason in reasons}
    return ", ".join(f"{n} {reason}" for reason, n in counts.items())
