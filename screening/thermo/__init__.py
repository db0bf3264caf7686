"""Thermodynamic stability: formation energy and energy above the convex hull.

Predicted energies and Materials Project reference entries are put on the same MP2020-corrected scale,
then compared on pymatgen phase diagrams built once per chemical system.
"""

from __future__ import annotations

from screening.thermo.corrections import (
    corrected_energy_per_atom_eV,
    mp2020_correction_per_atom_eV,
    mp_calculation_parameters,
    oxidation_states,
)
from screening.thermo.entropy import (
    config_entropy_term_eV,
    configurational_entropy_per_atom_kB,
    site_occupancies_from_structure,
)
from screening.thermo.errors import ThermoError
from screening.thermo.references import (
    BUNDLED_NAME,
    ReferenceSet,
    bundled_reference_set,
    load_reference_entries,
)
from screening.thermo.stability import CONFIG_ENTROPY_TERM, stability

__all__ = [
    "BUNDLED_NAME",
    "CONFIG_ENTROPY_TERM",
    "ReferenceSet",
    "ThermoError",
    "bundled_reference_set",
    "config_entropy_term_eV",
    "configurational_entropy_per_atom_kB",
    "corrected_energy_per_atom_eV",
    "load_reference_entries",
    "mp2020_correction_per_atom_eV",
    "mp_calculation_parameters",
    "oxidation_states",
    "site_occupancies_from_structure",
    "stability",
]
