"""Physical descriptors of a structure's ionic transport: the inputs a learned conductivity model gets
from the physics stage (:func:`screening.transport.compute_transport`, ``bvse``) and the structure.

Every descriptor is finite (a missing barrier, e.g. no 3D path, is written as :data:`BARRIER_CAP_eV` and
the dimensionality, :func:`effective_dimensionality`, says which paths exist) and invariant under rotation, translation, site permutation
and supercells (densities, fractions and barriers, never counts). The names are the columns of the
feature table (:data:`DESCRIPTOR_NAMES`), defined once here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from pymatgen.core import Structure

from screening.schema import Col, is_missing
from screening.transport.oxidation import ANION_ELEMENTS

#: A barrier above this is no path at room temperature; missing or larger barriers are written as it, eV.
BARRIER_CAP_eV = 3.0
#: Paths whose barrier is within this of the lowest count as open for :func:`effective_dimensionality`
#: (the grid moves barriers by about 0.01 eV with the cell's origin), eV.
DIMENSIONALITY_TOLERANCE_eV = 0.05
#: log10 of a conductivity too small to matter, where the physics gives 0 S/cm.
LOG10_SIGMA_FLOOR = -30.0

#: Anion groups whose share of the anion sites is a descriptor (the anion decides polarisability and
#: bottleneck size more than any other single choice).
ANION_GROUPS: dict[str, frozenset[str]] = {
    "oxide": frozenset({"O"}),
    "sulfide": frozenset({"S"}),
    "selenide_telluride": frozenset({"Se", "Te"}),
    "fluoride": frozenset({"F"}),
    "heavy_halide": frozenset({"Cl", "Br", "I"}),
    "nitride_phosphide": frozenset({"N", "P", "As"}),
    "hydride": frozenset({"H"}),
}

#: The descriptor names, in the order of :func:`physical_descriptors`' vector.
DESCRIPTOR_NAMES: tuple[str, ...] = (
    "ea_migration_eV",
    "ea_1d_eV",
    "ea_2d_eV",
    "ea_3d_eV",
    "percolation_dimensionality",
    "defect_formation_eV",
    "ea_effective_eV",
    "site_filling",
    "vacancy_fraction",
    "log10_mobile_ion_density_cm3",
    "log10_carrier_density_cm3",
    "jump_distance_A",
    "log10_sigma_physics_S_per_cm",
    "volume_per_atom_A3",
    "volume_per_anion_A3",
    "mobile_ion_atom_fraction",
    "disordered_site_fraction",
    *(f"anion_share_{group}" for group in ANION_GROUPS),
)


def _barrier(value: Any) -> float:
    return BARRIER_CAP_eV if is_missing(value) else min(float(value), BARRIER_CAP_eV)


def effective_dimensionality(ea_1d_eV: float, ea_2d_eV: float, ea_3d_eV: float) -> float:
    """The largest dimensionality whose percolation barrier is within :data:`DIMENSIONALITY_TOLERANCE_eV`
    of the 1D one (0 when no path exists below the cap): a grid-robust form of
    ``percolation_dimensionality``, which jumps between 1 and 3 in a cubic crystal when the grid breaks
    the tie between equal barriers."""
    if ea_1d_eV >= BARRIER_CAP_eV:
        return 0.0
    barriers = (ea_1d_eV, ea_2d_eV, ea_3d_eV)
    return float(max(d + 1 for d, e in enumerate(barriers) if e <= ea_1d_eV + DIMENSIONALITY_TOLERANCE_eV))


def _log10(value: Any, floor: float) -> float:
    if is_missing(value) or not value > 0:
        return floor
    return max(math.log10(float(value)), floor)


def physical_descriptors(structure: Structure, transport: Mapping[str, Any], mobile_ion: str) -> np.ndarray:
    """The :data:`DESCRIPTOR_NAMES` vector of one structure.

    Args:
        structure: the structure (ordered or disordered) the transport row was computed on.
        transport: an ``ok`` row of :func:`~screening.transport.compute_transport` (``bvse``).
        mobile_ion: the mobile ion's element symbol.

    Returns:
        float64 array of shape ``(len(DESCRIPTOR_NAMES),)``, every entry finite.
    """
    composition = structure.composition
    amounts = composition.get_el_amt_dict()
    n_atoms = sum(amounts.values())
    anion_amounts = {el: amt for el, amt in amounts.items() if el in ANION_ELEMENTS and el != mobile_ion}
    n_anions = sum(anion_amounts.values())
    disordered = sum(1 for site in structure if not site.is_ordered) / len(structure)
    values: dict[str, float] = {
        "ea_migration_eV": _barrier(transport.get(Col.EA_MIGRATION)),
        "ea_1d_eV": _barrier(transport.get(Col.EA_1D)),
        "ea_2d_eV": _barrier(transport.get(Col.EA_2D)),
        "ea_3d_eV": _barrier(transport.get(Col.EA_3D)),
        "defect_formation_eV": _barrier(transport.get(Col.DEFECT_FORMATION)),
        "ea_effective_eV": _barrier(transport.get(Col.EA)),
        "site_filling": float(transport.get(Col.SITE_FILLING) or 0.0),
        "vacancy_fraction": float(transport.get(Col.VACANCY_FRACTION) or 0.0),
        "log10_mobile_ion_density_cm3": _log10(transport.get(Col.MOBILE_ION_DENSITY), 0.0),
        "log10_carrier_density_cm3": _log10(transport.get(Col.CARRIER_DENSITY), 0.0),
        "jump_distance_A": float(transport.get(Col.JUMP_DISTANCE) or 0.0),
        "log10_sigma_physics_S_per_cm": _log10(transport.get(Col.SIGMA), LOG10_SIGMA_FLOOR),
        "volume_per_atom_A3": structure.volume / n_atoms,
        "volume_per_anion_A3": structure.volume / n_anions if n_anions else structure.volume / n_atoms,
        "mobile_ion_atom_fraction": amounts.get(mobile_ion, 0.0) / n_atoms,
        "disordered_site_fraction": disordered,
    }
    values["percolation_dimensionality"] = effective_dimensionality(
        values["ea_1d_eV"], values["ea_2d_eV"], values["ea_3d_eV"]
    )
    for group, elements in ANION_GROUPS.items():
        share = sum(amt for el, amt in anion_amounts.items() if el in elements)
        values[f"anion_share_{group}"] = share / n_anions if n_anions else 0.0
    return np.array([values[name] for name in DESCRIPTOR_NAMES], dtype=np.float64)
