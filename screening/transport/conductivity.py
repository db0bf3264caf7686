"""Carrier density, hopping diffusivity, Nernst-Einstein conductivity and the Arrhenius form.

Units: lengths in angstrom at the inputs (converted to cm inside), energies in eV, temperatures in K,
frequencies in Hz, densities in cm^-3, diffusivities in cm^2/s, conductivities in S/cm.

* Hopping diffusivity: ``D = (1/6) a^2 nu0 exp(-Ea / (k_B T))``.
* Nernst-Einstein: ``sigma = n (z e)^2 D / (H_R k_B T)`` with ``H_R`` the Haven ratio (tracer over
  charge diffusivity; 1 means uncorrelated hops). ``e^2 / k_B`` in C^2/(J/K) times cm^-3 * cm^2/s / K
  gives C^2 / (J s cm) = S/cm.
* Arrhenius form: ``sigma T = A exp(-Ea / (k_B T))`` with, for the hopping model,
  ``A = n (z e)^2 a^2 nu0 / (6 H_R k_B)`` in S K / cm.
"""

from __future__ import annotations

import math

from pymatgen.core import Structure

from screening.constants import BOLTZMANN_J_PER_K, ELEMENTARY_CHARGE_C, BOLTZMANN_eV_PER_K
from screening.errors import InputError

CM_PER_A = 1e-8
CM3_PER_A3 = 1e-24


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0 or not math.isfinite(value):
            raise InputError(f"{name} must be a positive finite number, got {value!r}")


def mobile_ion_count(structure: Structure, ion: str) -> float:
    """Number of mobile ions in the cell, partial occupancies counted as fractions."""
    return float(structure.composition.get_el_amt_dict().get(ion, 0.0))


def number_density_cm3(count_per_cell: float, cell_volume_A3: float) -> float:
    """``count_per_cell`` particles in a cell of ``cell_volume_A3`` as a density, cm^-3."""
    return count_per_cell / (cell_volume_A3 * CM3_PER_A3)


def carrier_density_cm3(structure: Structure, ion: str) -> float:
    """Mobile ions per volume (cm^-3), partial occupancies counted as fractions.

    Args:
        structure: ordered or disordered structure.
        ion: element symbol of the mobile ion.
    """
    return number_density_cm3(mobile_ion_count(structure, ion), structure.volume)


def diffusivity_cm2_per_s(
    ea_eV: float, temperature_K: float, jump_distance_A: float, attempt_frequency_Hz: float = 1e13
) -> float:
    """Random-walk hopping diffusivity ``D = (1/6) a^2 nu0 exp(-Ea / k_B T)`` in cm^2/s."""
    _check_positive(
        temperature_K=temperature_K,
        jump_distance_A=jump_distance_A,
        attempt_frequency_Hz=attempt_frequency_Hz,
    )
    a_cm = jump_distance_A * CM_PER_A
    return a_cm**2 * attempt_frequency_Hz / 6.0 * math.exp(-ea_eV / (BOLTZMANN_eV_PER_K * temperature_K))


def nernst_einstein_sigma_S_per_cm(
    carrier_density_cm3: float,
    diffusivity_cm2_per_s: float,
    temperature_K: float,
    charge: int = 1,
    haven_ratio: float = 1.0,
) -> float:
    """Nernst-Einstein conductivity ``sigma = n (z e)^2 D / (H_R k_B T)`` in S/cm.

    Args:
        carrier_density_cm3: mobile-ion density (cm^-3).
        diffusivity_cm2_per_s: (tracer) diffusivity of the mobile ion (cm^2/s).
        temperature_K: temperature (K).
        charge: charge number z of the mobile ion.
        haven_ratio: Haven ratio H_R (> 0).
    """
    _check_positive(temperature_K=temperature_K, haven_ratio=haven_ratio)
    if carrier_density_cm3 < 0 or diffusivity_cm2_per_s < 0:
        raise InputError("carrier density and diffusivity must not be negative")
    q_C = charge * ELEMENTARY_CHARGE_C
    return (
        carrier_density_cm3
        * q_C**2
        * diffusivity_cm2_per_s
        / (haven_ratio * BOLTZMANN_J_PER_K * temperature_K)
    )


def arrhenius_prefactor(
    carrier_density_cm3: float,
    jump_distance_A: float,
    attempt_frequency_Hz: float = 1e13,
    charge: int = 1,
    haven_ratio: float = 1.0,
) -> float:
    """Prefactor ``A`` (S K / cm) of ``sigma T = A exp(-Ea / k_B T)`` for the hopping model."""
    _check_positive(
        jump_distance_A=jump_distance_A, attempt_frequency_Hz=attempt_frequency_Hz, haven_ratio=haven_ratio
    )
    q_C = charge * ELEMENTARY_CHARGE_C
    a_cm = jump_distance_A * CM_PER_A
    return (
        carrier_density_cm3
        * q_C**2
        * a_cm**2
        * attempt_frequency_Hz
        / (6.0 * haven_ratio * BOLTZMANN_J_PER_K)
    )


def arrhenius_sigma_S_per_cm(prefactor_S_K_per_cm: float, ea_eV: float, temperature_K: float) -> float:
    """Conductivity (S/cm) from the Arrhenius form ``sigma = A / T exp(-Ea / k_B T)``."""
    _check_positive(temperature_K=temperature_K)
    return prefactor_S_K_per_cm / temperature_K * math.exp(-ea_eV / (BOLTZMANN_eV_PER_K * temperature_K))


#: Highest room-temperature ionic conductivities measured, S/cm: for Li, Li9.54Si1.74P1.44S11.7Cl0.3
#: (2.5e-2 S/cm; Kato et al., Nature Energy 1, 16030, 2016); for any mobile ion, RbAg4I5 (about 0.25 S/cm;
#: Owens and Argue, Science 157, 308, 1967).
RECORD_SIGMA_RT_S_PER_CM: dict[str, float] = {"Li": 2.5e-2}
RECORD_SIGMA_RT_ANY_ION_S_PER_CM = 0.25
#: A room-temperature prediction this many times above the record is flagged (the physics is good to a
#: decade or two, so a prediction above that is more likely an error of the inputs than a discovery).
IMPLAUSIBLE_FACTOR = 10.0
#: What counts as room temperature for that comparison, K.
ROOM_TEMPERATURE_RANGE_K = (250.0, 350.0)


def implausible_sigma_note(sigma_S_per_cm: float, ion: str, temperature_K: float) -> str | None:
    """A note for the results row where a room-temperature conductivity exceeds ten times the highest
    ever measured for ``ion`` (or for any ion), else None: such a barrier is more likely too low
    (coordinates with errors, co-occupants of the mobile ion's sites left out of the landscape) than right.
    """
    low_K, high_K = ROOM_TEMPERATURE_RANGE_K
    if not low_K <= temperature_K <= high_K:
        return None
    record = RECORD_SIGMA_RT_S_PER_CM.get(ion, RECORD_SIGMA_RT_ANY_ION_S_PER_CM)
    if not sigma_S_per_cm > IMPLAUSIBLE_FACTOR * record:
        return None
    holder = f"any {ion} conductor" if ion in RECORD_SIGMA_RT_S_PER_CM else "any solid"
    return (
        f"sigma from this barrier and carrier density, {sigma_S_per_cm:.2g} S/cm, is more than "
        f"{IMPLAUSIBLE_FACTOR:g} times the highest measured at room temperature for {holder} "
        f"({record:.2g} S/cm): the barrier is probably too low"
    )
