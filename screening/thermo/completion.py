"""Hull completion: model-computed ground-state binaries for metal-anion systems the references lack.

A hull missing La2O3 and ZrO2 puts the garnet Li7La3Zr2O12 electronvolts "below" it. Where the reference
set has no compound of a metal-anion system (:meth:`ReferenceSet.missing_anion_binaries`), the published
ground-state structure of that binary (``screening/data/hull_binaries.yaml``) is evaluated with the same energy
model as the candidates and added to the hull.

Energy scale: the new entry is a ``ComputedEntry`` holding the *raw* (uncorrected) GGA/GGA+U energy with
the calculation parameters MPRelaxSet would record, and goes through the same MP2020 processing as every
reference (:func:`~screening.thermo.references.mp2020_corrected`). For a model trained on raw energies the
prediction is the raw energy; for a model trained on MP2020-corrected energies the MP2020 correction of
the composition is subtracted first, so that the processing adds it back exactly once. Either way the
binary ends up on the scale :func:`~screening.thermo.corrections.corrected_energy_per_atom_eV` puts the
candidates on.

The binaries are taken at their experimental structures, unrelaxed, like the candidates of an unrelaxed
screening run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from pymatgen.core import Composition, Structure
from pymatgen.entries.computed_entries import ComputedEntry

from screening.bundled_records import load_bundled_entries
from screening.resources import package_data
from screening.thermo.corrections import (
    mp2020_correction_per_atom_eV,
    mp_calculation_parameters,
    oxidation_states,
)
from screening.thermo.errors import ThermoError
from screening.thermo.references import ReferenceSet, chemical_system, mp2020_corrected
from screening.validation import validate_structure

#: The published ground-state binaries available for completion.
HULL_BINARIES_PATH = package_data("hull_binaries.yaml")

_LOCK = threading.Lock()
_COMPLETED: dict[tuple[str, str | None, str, frozenset[str]], ReferenceSet] = {}
_ENERGIES_EV_PER_ATOM: dict[tuple[str, str], float] = {}


@cache
def hull_binaries(path: Path = HULL_BINARIES_PATH) -> dict[str, Structure]:
    """The binaries of ``path`` keyed by chemical system (``La-O``), as validated ordered structures.

    Raises:
        ThermoError: if an entry cannot be built, is not an ordered binary, fails
            :func:`~screening.validation.validate_structure`, or repeats a system.
    """
    binaries: dict[str, Structure] = {}
    try:
        entries = load_bundled_entries(Path(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ThermoError(f"hull binaries {path}: {exc}") from exc
    for entry in entries:
        try:
            structure = entry.structure()
        except ValueError as exc:
            raise ThermoError(str(exc)) from exc
        problems = validate_structure(structure, expected_formula=entry.formula)
        symbols = sorted(el.symbol for el in structure.composition.elements)
        if not structure.is_ordered or len(symbols) != 2:
            problems.append("not an ordered binary compound")
        if problems:
            raise ThermoError(f"hull binary {entry.id}: " + "; ".join(problems))
        system = chemical_system(symbols)
        if system in binaries:
            raise ThermoError(f"hull binaries: two entries for {system}")
        binaries[system] = structure
    return binaries


def _raw_energy_per_atom_eV(composition: Composition, predicted_eV: float, energy_model: Any) -> float:
    """The uncorrected GGA/GGA+U energy per atom behind a prediction (see the module docstring)."""
    if energy_model.training_energies_corrected:
        return predicted_eV - mp2020_correction_per_atom_eV(composition)
    return predicted_eV


def binary_entries(structures: Iterable[Structure], energy_model: Any) -> list[ComputedEntry]:
    """Raw-energy ``ComputedEntry`` objects of ordered binaries, energies from ``energy_model``.

    The entries carry MPRelaxSet's calculation parameters and no correction yet; pass them through
    :func:`~screening.thermo.references.mp2020_corrected` (as :func:`complete_references` does).

    Raises:
        ThermoError: if the model cannot evaluate a structure.
    """
    structures = list(structures)
    todo = [s for s in structures if (energy_model.name, s.formula) not in _ENERGIES_EV_PER_ATOM]
    if todo:
        try:
            energies = energy_model.predict_energy_per_atom(todo)
        except ValueError as exc:
            raise ThermoError(f"{energy_model.name} cannot evaluate a hull binary: {exc}") from exc
        for structure, energy in zip(todo, energies, strict=True):
            _ENERGIES_EV_PER_ATOM[(energy_model.name, structure.formula)] = float(energy)
    entries = []
    for structure in structures:
        composition = structure.composition.element_composition
        predicted = _ENERGIES_EV_PER_ATOM[(energy_model.name, structure.formula)]
        raw = _raw_energy_per_atom_eV(composition, predicted, energy_model)
        entries.append(
            ComputedEntry(
                composition,
                raw * composition.num_atoms,
                parameters=mp_calculation_parameters(composition),
                data={"oxidation_states": oxidation_states(composition)},
                entry_id=f"{energy_model.name}:{composition.reduced_formula}",
            )
        )
    return entries


def missing_systems(references: ReferenceSet, compositions: Iterable[Composition | str]) -> set[str]:
    """Metal-anion systems of ``compositions`` without a compound in ``references`` (``{"La-O"}``)."""
    return {
        system
        for composition in compositions
        for system in references.missing_anion_binaries(Composition(composition))
    }


def complete_references(
    references: ReferenceSet,
    compositions: Iterable[Composition | str],
    energy_model: Any,
    *,
    binaries_path: Path = HULL_BINARIES_PATH,
) -> ReferenceSet:
    """``references`` plus model-computed binaries for the metal-anion systems ``compositions`` miss.

    Systems without a binary in ``binaries_path`` stay missing (and are still reported by
    :meth:`ReferenceSet.missing_anion_binaries`). A fallback set is completed the same way. Results are
    cached per (reference set, model, added formulas), so every partition needing the same binaries
    shares one set and its phase diagrams.

    Args:
        references: the hull reference set.
        compositions: compositions to be placed on the hull.
        energy_model: an ``EnergyModel`` (``name``, ``training_energies_corrected``,
            ``predict_energy_per_atom``), the one that predicts the candidates.
        binaries_path: YAML of ground-state binaries (format of :mod:`screening.bundled_records`).

    Returns:
        ``references`` itself when nothing can be added, else a new set named
        ``"<name> + <model>: La2O3, ZrO2"``.

    Raises:
        ThermoError: if the binaries file is malformed, the model cannot evaluate a binary, or MP2020
            rejects one.
    """
    compositions = [Composition(c) for c in compositions]
    fallback = references.fallback
    if fallback is not None:
        fallback = complete_references(fallback, compositions, energy_model, binaries_path=binaries_path)
    available = hull_binaries(Path(binaries_path))
    systems = sorted(missing_systems(references, compositions) & available.keys())
    if not systems and fallback is references.fallback:
        return references
    structures = [available[system] for system in systems]
    formulas = frozenset(s.composition.reduced_formula for s in structures)
    key = (references.name, fallback.name if fallback else None, energy_model.name, formulas)
    with _LOCK:
        if key not in _COMPLETED:
            processed, n_rejected = mp2020_corrected(binary_entries(structures, energy_model))
            if n_rejected:
                raise ThermoError(f"MP2020 rejects model-computed hull binaries among {sorted(formulas)}")
            name = references.name
            if formulas:
                name = f"{name} + {energy_model.name}: {', '.join(sorted(formulas))}"
            _COMPLETED[key] = ReferenceSet(
                name=name,
                entries=[*references.entries, *processed],
                fallback=fallback,
                n_rejected=references.n_rejected,
            )
        return _COMPLETED[key]
