"""Formation energy and energy above the convex hull of one predicted energy."""

from __future__ import annotations

import math
from typing import Any

from pymatgen.core import Composition

from screening.schema import Col
from screening.thermo.corrections import corrected_energy_per_atom_eV
from screening.thermo.entropy import SiteOccupancies, config_entropy_term_eV
from screening.thermo.errors import ThermoError
from screening.thermo.references import ReferenceSet

#: Key of the ``-T * S_config`` term (eV/atom) in the dict :func:`stability` returns.
CONFIG_ENTROPY_TERM = Col.CONFIG_ENTROPY_TERM


def _checked_composition(composition: Composition | str) -> Composition:
    try:
        composition = Composition(composition)
    except (ValueError, TypeError) as exc:
        raise ThermoError(f"invalid composition {composition!r}: {exc}") from exc
    if composition.num_atoms <= 0 or any(amount < 0 for amount in composition.values()):
        raise ThermoError(f"composition {composition.formula!r} has no atoms or negative amounts")
    return composition.element_composition


def _checked_energy(name: str, value: float, *, non_negative: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ThermoError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(value) or (non_negative and value < 0):
        raise ThermoError(f"{name} must be finite{' and >= 0' if non_negative else ''}, got {value}")
    return value


def stability(
    composition: Composition | str,
    energy_per_atom_eV: float,
    *,
    references: ReferenceSet,
    energy_per_atom_std_eV: float = 0.0,
    energies_corrected: bool,
    temperature_K: float | None = None,
    site_occupancies: SiteOccupancies | None = None,
    entropy_in_hull: bool = False,
    model_error_eV: float = 0.0,
) -> dict[str, Any]:
    """Formation energy and energy above the hull of a predicted energy per atom.

    ``hull_missing_systems`` lists the cation-anion binary systems the reference set has no compound
    for (``"La-O, O-Zr"``); where it is not None the hull lacks phases that certainly exist and
    ``e_above_hull_eV`` is only a lower bound (see
    :meth:`~screening.thermo.references.ReferenceSet.missing_anion_binaries`).

    The prediction is put on the MP2020-corrected scale of the references (unless the model's training
    energies already include the corrections: never corrected twice), then compared with the elemental
    references (formation energy) and with the lower convex hull of the reference entries of its chemical
    system at the same composition (hull distance). Fractional (disordered) compositions are placed on
    the hull as they are. The hull is only as complete as the reference set: a missing competing phase
    lowers ``e_above_hull_eV``, i.e. candidates look more stable than they are; the set used is returned
    as ``hull_reference``.

    The hull distance is signed: negative means below the reference hull by that much (the candidate
    would be a new stable phase), and it moves one-for-one with the predicted energy. With the hull held
    fixed, the configurational part of its standard deviation is the standard deviation of the energy per
    atom. The model's own error ``model_error_eV`` (the error scale of
    :mod:`screening.thermo.model_error`) is added in quadrature: it is taken as independent of the
    configurational spread, so ``e_above_hull_std_eV = sqrt(energy_per_atom_std_eV**2 + model_error_eV**2)``.
    The reference hull is DFT (Materials Project) and carries no model error; binaries the hull completion
    computed with the model share its error with the candidate, which this ignores.

    Args:
        composition: composition of the predicted structure (integer or fractional amounts).
        energy_per_atom_eV: predicted energy per atom (eV/atom), on the model's training scale.
        references: from :func:`~screening.thermo.references.load_reference_entries`.
        energy_per_atom_std_eV: standard deviation of the predicted energy (eV/atom).
        energies_corrected: True if the model's training energies include MP2020 corrections.
        temperature_K: if given, also return the ideal configurational entropy term ``-T * S_config``
            (eV/atom) under ``"config_entropy_term_eV"``; needs ``site_occupancies``.
        site_occupancies: one ``{species: probability}`` mapping per site (vacancy implied by
            ``1 - sum``), e.g. from :func:`~screening.thermo.entropy.site_occupancies_from_structure`.
        model_error_eV: standard deviation of the model's error on the hull distance, eV/atom.
        entropy_in_hull: if True, subtract ``T * S_config`` from the candidate before computing the
            formation energy and the hull distance (reference phases are taken as ordered, S = 0);
            by default both stay 0 K values.

    Returns:
        ``{Col.E_FORM_PER_ATOM, Col.E_ABOVE_HULL, Col.E_ABOVE_HULL_STD, Col.HULL_REFERENCE,
        Col.HULL_MISSING_SYSTEMS}`` (energies in eV/atom),
        plus ``"config_entropy_term_eV"`` when ``temperature_K`` is given.

    Raises:
        ThermoError: for an element the references lack (named), a composition the MP2020 scheme
            rejects, non-finite energies, or invalid occupancies.
    """
    composition = _checked_composition(composition)
    energy = _checked_energy("energy_per_atom_eV", energy_per_atom_eV)
    std = _checked_energy("energy_per_atom_std_eV", energy_per_atom_std_eV, non_negative=True)
    model_std = _checked_energy("model_error_eV", model_error_eV, non_negative=True)
    if entropy_in_hull and temperature_K is None:
        raise ThermoError("entropy_in_hull needs temperature_K")

    entropy_term = None
    if temperature_K is not None:
        if site_occupancies is None:
            raise ThermoError("temperature_K given without site_occupancies: the entropy needs the sites")
        entropy_term = config_entropy_term_eV(site_occupancies, float(temperature_K), composition)

    reference_set = references.for_composition(composition)
    diagram = reference_set.phase_diagram(el.symbol for el in composition.elements)
    energy = corrected_energy_per_atom_eV(composition, energy, energies_corrected=energies_corrected)
    if entropy_in_hull:
        energy += entropy_term

    elemental_eV = math.fsum(
        composition.get_atomic_fraction(el) * diagram.el_refs[el].energy_per_atom
        for el in composition.elements
    )
    result: dict[str, Any] = {
        Col.E_FORM_PER_ATOM: float(energy - elemental_eV),
        Col.E_ABOVE_HULL: float(energy - diagram.get_hull_energy_per_atom(composition)),
        Col.E_ABOVE_HULL_STD: math.hypot(std, model_std),
        Col.HULL_REFERENCE: reference_set.name,
        Col.HULL_MISSING_SYSTEMS: ", ".join(reference_set.missing_anion_binaries(composition)) or None,
    }
    if entropy_term is not None:
        result[CONFIG_ENTROPY_TERM] = entropy_term
    return result
