"""The transport stage for one structure: :func:`compute_transport` composes oxidation states, carrier
density, the barrier of the chosen method and Nernst-Einstein (see :mod:`screening.transport` for the
methods and the conventions of the returned columns)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from pymatgen.core import Species, Structure

from screening.errors import InputError, ScreeningError
from screening.schema import STATUS_NOT_APPLICABLE, STATUS_OK, Col
from screening.transport.bvse import (
    DEFAULT_MIN_JUMP_DISTANCE_A,
    BVSEResult,
    DEFAULT_MAX_BARRIER_eV,
    NoPercolationError,
    bvse_barriers,
)
from screening.transport.carriers import carrier_model, mobile_sublattice
from screening.transport.cleanup import CleanupError, CleanupOptions, relaxed_framework
from screening.transport.conductivity import (
    diffusivity_cm2_per_s,
    implausible_sigma_note,
    nernst_einstein_sigma_S_per_cm,
    number_density_cm3,
)
from screening.transport.defects import DefectOptions
from screening.transport.landscape import LandscapeError
from screening.transport.oxidation import ANION_ELEMENTS, OxidationStateError, assign_oxidation_states
from screening.transport.polycrystal import PolycrystalAverage, polycrystal_average
from screening.transport.potential_frenkel import DEFAULT_FRENKEL_CONFIGURATIONS, potential_frenkel_energies
from screening.transport.registry import PHYSICS_METHODS, CoordinateCleanup, FrenkelMethod, PhysicsMethod

#: Below this vacancy fraction a sublattice counts as fully occupied: its carriers are Frenkel pairs, worth
#: the potential's defect calculation (above it the vacancies outnumber any Frenkel pair with E_F > 0.2 eV).
FULL_SUBLATTICE_VACANCIES = 1e-3

#: Columns of the results table this stage fills.
TRANSPORT_COLUMNS: tuple[Col, ...] = (
    Col.MOBILE_ION,
    Col.MOBILE_ION_DENSITY,
    Col.SITE_FILLING,
    Col.VACANCY_FRACTION,
    Col.INTERSTITIAL_FRACTION,
    Col.DEFECT_FORMATION,
    Col.CONDUCTION_MECHANISM,
    Col.CARRIER_DENSITY,
    Col.EA_MIGRATION,
    Col.EA,
    Col.EA_STD,
    Col.EA_METHOD,
    Col.EA_1D,
    Col.EA_2D,
    Col.EA_3D,
    Col.POLYCRYSTAL_FACTOR,
    Col.OCCUPIED_SITE_ENERGY,
    Col.PERCOLATION_DIMENSIONALITY,
    Col.JUMP_DISTANCE,
    Col.ATTEMPT_FREQUENCY,
    Col.HAVEN_RATIO,
    Col.DIFFUSIVITY,
    Col.TEMPERATURE,
    Col.SIGMA,
    Col.LOG10_SIGMA,
    Col.OXIDATION_STATES_GUESSED,
    Col.OXIDATION_STATES,
    Col.TRANSPORT_NOTES,
    Col.STATUS,
    Col.ERROR,
)


class TransportError(ScreeningError, ValueError):
    """Transport could not be computed for a structure; the message is the reason for the failed row."""


def mobile_ion_charge(structure: Structure, mobile_ion: str) -> int:
    """Oxidation state of the mobile ion in a decorated structure (occupancy-weighted mean, rounded).

    Raises:
        TransportError: when the mobile ion is not a cation.
    """
    total = weight = 0.0
    for site in structure:
        for specie, occupancy in site.species.items():
            if specie.symbol == mobile_ion and isinstance(specie, Species) and specie.oxi_state is not None:
                total += occupancy * specie.oxi_state
                weight += occupancy
    charge = round(total / weight) if weight else 0
    if charge <= 0:
        raise TransportError(
            f"{mobile_ion} is not a cation in this structure (oxidation state {total / max(weight, 1e-12):g})"
        )
    return charge


def pellet_average(result: BVSEResult, temperature_K: float, max_barrier_eV: float) -> PolycrystalAverage:
    """The polycrystal average of a bvse result's 1D, 2D and 3D barriers
    (:mod:`screening.transport.polycrystal`). A direction with no path below the landscape's search limit
    takes that limit as its barrier: an upper bound on its conductivity, and so on the pellet's."""
    unreached_eV = max_barrier_eV - result.occupied_site_energy_eV
    barriers = [
        unreached_eV if ea is None else ea for ea in (result.ea_1d_eV, result.ea_2d_eV, result.ea_3d_eV)
    ]
    return polycrystal_average(barriers, temperature_K)


def _row(mobile_ion: str, temperature_K: float, method: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(TRANSPORT_COLUMNS)
    row.update({Col.MOBILE_ION: mobile_ion, Col.TEMPERATURE: temperature_K, Col.EA_METHOD: method})
    row.update({Col(k): v for k, v in values.items()})
    return row


def compute_transport(
    structure: Structure,
    *,
    mobile_ion: str = "Li",
    temperature_K: float = 300.0,
    method: PhysicsMethod = "bvse",
    attempt_frequency_Hz: float = 1e13,
    haven_ratio: float = 1.0,
    energy_model: Any = None,
    frenkel_method: FrenkelMethod = "potential",
    defect_options: DefectOptions | None = None,
    frenkel_configurations: int = DEFAULT_FRENKEL_CONFIGURATIONS,
    defect_cache_dir: str | os.PathLike[str] | None = None,
    coordinate_cleanup: CoordinateCleanup = "none",
    cleanup_options: CleanupOptions | None = None,
    **method_options: Any,
) -> dict[str, Any]:
    """Carrier density, migration barrier and conductivity of one structure.

    Args:
        structure: ordered or disordered structure, with or without oxidation states.
        mobile_ion: element symbol of the mobile ion (``Li``, ``Na``, ``K``, ``Mg``, ``Ag``, ``Cu``).
        temperature_K: temperature at which D and sigma are reported (K).
        method: ``bvse`` or ``md``.
        attempt_frequency_Hz: attempt frequency nu0 of the hopping model (bvse).
        haven_ratio: Haven ratio H_R in Nernst-Einstein.
        energy_model: the run's ``EnergyModel``; with ``frenkel_method="potential"`` it computes the
            Frenkel energy of a fully occupied, ordered sublattice (:mod:`screening.transport.defects`;
            disordered ones too with ``defect_options.include_disordered``, through
            ``frenkel_configurations`` ordered configurations).
        frenkel_method: ``potential`` (the model, where given and applicable) or ``bvse`` (the landscape's
            estimate, always the fallback).
        defect_options: supercell and relaxation of the potential's defect calculation.
        frenkel_configurations: ordered configurations of a disordered structure whose Frenkel energies
            the potential computes; the carriers take the mean of their Frenkel fractions
            (:mod:`screening.transport.potential_frenkel`).
        defect_cache_dir: a directory where the potential's Frenkel energies are kept and reused by
            later calls with the same inputs (:mod:`screening.transport.defect_cache`); None: none kept.
        coordinate_cleanup: ``relax``: relax the framework with ``energy_model`` before the barrier
            (:mod:`screening.transport.cleanup`); ``none``: the coordinates as given.
        cleanup_options: settings of that relaxation.
        **method_options: passed to :func:`screening.transport.bvse.bvse_barriers` (``grid_spacing_A``,
            ``cutoff_A``, ``max_barrier_eV``, ``min_jump_distance_A``) or to
            :func:`screening.transport.md.md_transport` (``temperatures_K``, ``n_steps``, ...).

    Returns:
        Results-table columns keyed by :class:`~screening.schema.Col` values, status ``ok`` or
        ``not applicable``.

    Raises:
        TransportError: the reason the structure gets no result.
    """
    if method not in PHYSICS_METHODS:
        raise InputError(f"unknown transport method {method!r}; use one of {', '.join(PHYSICS_METHODS)}")
    if not temperature_K > 0 or not haven_ratio > 0 or not attempt_frequency_Hz > 0:
        raise TransportError("temperature_K, haven_ratio and attempt_frequency_Hz must be positive")

    def not_applicable(reason: str) -> dict[str, Any]:
        return _row(mobile_ion, temperature_K, method, status=STATUS_NOT_APPLICABLE, error=reason)

    symbols = {el.symbol for el in structure.composition.elements}
    if mobile_ion not in symbols:
        return not_applicable(f"no {mobile_ion} in the structure")
    if not symbols & ANION_ELEMENTS:
        return not_applicable(
            f"no anion ({', '.join(sorted(symbols))}): a metal or intermetallic, not an ionic conductor"
        )
    notes: list[str] = []
    if coordinate_cleanup == "relax" and energy_model is not None:
        cleanup_options = cleanup_options or CleanupOptions()
        try:
            cleaned = relaxed_framework(structure, energy_model, cleanup_options)
            structure = cleaned.structure
            notes.append(f"framework relaxed with {energy_model.name} before the barrier")
            if not cleaned.converged:
                notes.append(
                    f"framework relaxation stopped after {cleaned.n_steps} steps with forces above "
                    f"{cleanup_options.fmax_eV_per_A:g} eV/A: partly cleaned (cleanup.max_steps)"
                )
        except CleanupError as exc:
            notes.append(f"{exc}; the coordinates as given are used")
    try:
        assignment = assign_oxidation_states(structure)
    except OxidationStateError as exc:
        raise TransportError(str(exc)) from exc
    decorated = assignment.structure
    try:
        charge = mobile_ion_charge(decorated, mobile_ion)
    except TransportError as exc:
        return not_applicable(str(exc))
    merge_A = float(method_options.get("min_jump_distance_A", DEFAULT_MIN_JUMP_DISTANCE_A))
    sublattice = mobile_sublattice(decorated, mobile_ion, merge_A)
    if sublattice.n_interstitials:
        notes.append(
            f"{sublattice.n_interstitials:.3g} {mobile_ion} per cell beyond one per site (split positions "
            "whose occupancies add to more than one): interstitial carriers"
        )
    if method == "bvse" and assignment.net_charge_e:
        # the charge the composition lacks (or has too much of) is mobile ions the file does not locate
        missing = -assignment.net_charge_e / charge
        sublattice = sublattice.with_ions_added(missing)
        notes.append(
            f"{missing:+.3g} {mobile_ion} per cell inferred from charge balance, not located in the file: "
            + (
                "they fill empty sites first, the rest are interstitial carriers"
                if missing > 0
                else "removed"
            )
        )
    ions_cm3 = number_density_cm3(sublattice.n_ions, structure.volume)  # with the inferred ions, if any
    common: dict[str, Any] = {
        "mobile_ion_density_cm3": ions_cm3,
        "site_filling": sublattice.site_filling,
        "vacancy_fraction": sublattice.vacancy_fraction,
        "interstitial_fraction": sublattice.interstitial_fraction,
        "haven_ratio": haven_ratio,
        "oxidation_states_guessed": assignment.guessed,
        "oxidation_states": json.dumps(assignment.mean_states, sort_keys=True),
        "status": STATUS_OK,
    }
    notes += assignment.notes
    if method == "bvse":
        try:
            device = getattr(energy_model, "device", "cpu")  # the worker's device: CPU or its GPU
            result = bvse_barriers(
                decorated, mobile_ion, charge, temperature_K=temperature_K, device=device, **method_options
            )
        except (LandscapeError, NoPercolationError) as exc:
            raise TransportError(str(exc)) from exc
        notes += result.notes
        frenkel_eV: float | tuple[float, ...] = result.frenkel_eV  # one per configuration from the potential
        frenkel_source = "bvse"
        wants_potential = frenkel_method == "potential" and energy_model is not None
        defects = defect_options or DefectOptions()
        if (
            wants_potential
            and sublattice.vacancy_fraction < FULL_SUBLATTICE_VACANCIES
            and (structure.is_ordered or defects.include_disordered)
        ):
            computed = potential_frenkel_energies(
                structure,
                mobile_ion,
                result.frenkel.site_frac,
                result.frenkel.interstitial_candidates_frac,
                energy_model,
                defects,
                configurations=frenkel_configurations,
                cache_dir=defect_cache_dir,
            )
            refused = "; ".join(computed.refusals)
            if computed.energies_eV:
                frenkel_eV, frenkel_source = computed.energies_eV, computed.source(energy_model.name)
                if refused:
                    notes.append(f"left out of the Frenkel mean: {refused}")
            else:
                notes.append(f"{refused}; the bond-valence Frenkel estimate is used")
        notes.append(f"Frenkel energy from {frenkel_source}")
        max_barrier_eV = float(method_options.get("max_barrier_eV", DEFAULT_MAX_BARRIER_eV))
        pellet = pellet_average(result, temperature_K, max_barrier_eV)
        carriers = carrier_model(
            pellet.ea_eV,
            frenkel_eV,
            sublattice.vacancy_fraction,
            temperature_K,
            interstitial_fraction=sublattice.interstitial_fraction,
        )
        d_cm2_s = pellet.factor * diffusivity_cm2_per_s(
            result.ea_eV, temperature_K, result.jump_distance_A, attempt_frequency_Hz
        )
        n_cm3 = ions_cm3 * carriers.carrier_factor
        values = {
            "ea_migration_eV": pellet.ea_eV,
            "defect_formation_eV": carriers.defect_formation_eV,
            "conduction_mechanism": carriers.mechanism,
            "ea_eV": carriers.ea_eV,
            "ea_1d_eV": result.ea_1d_eV,
            "ea_2d_eV": result.ea_2d_eV,
            "ea_3d_eV": result.ea_3d_eV,
            "polycrystal_factor": pellet.factor,
            "occupied_site_energy_eV": result.occupied_site_energy_eV,
            "percolation_dimensionality": result.percolation_dimensionality,
            "jump_distance_A": result.jump_distance_A,
            "attempt_frequency_Hz": attempt_frequency_Hz,
        }
    else:
        from screening.transport.md import MDError, md_transport

        try:
            md = md_transport(decorated, mobile_ion, temperature_K, **method_options)
        except MDError as exc:
            raise TransportError(str(exc)) from exc
        d_cm2_s = md.diffusivity_cm2_per_s  # the tracer D of every ion: defects are in the simulation
        n_cm3 = ions_cm3
        values = {"ea_eV": md.ea_eV, "ea_migration_eV": md.ea_eV, "ea_std_eV": md.ea_std_eV}
    sigma = nernst_einstein_sigma_S_per_cm(n_cm3, d_cm2_s, temperature_K, charge, haven_ratio)
    implausible = implausible_sigma_note(sigma, mobile_ion, temperature_K)
    if implausible:
        notes.append(implausible)
    values.update(
        carrier_density_cm3=n_cm3,
        diffusivity_cm2_per_s=d_cm2_s,
        sigma_S_per_cm=sigma,
        log10_sigma_S_per_cm=math.log10(sigma) if sigma > 0 else -math.inf,
        transport_notes=notes,
    )
    return _row(mobile_ion, temperature_K, method, **common, **values)
