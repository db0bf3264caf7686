"""The transport stage for one structure: :func:`compute_transport` composes oxidation states, carrier
density, the barrier of the chosen method and Nernst-Einstein (see :mod:`screening.transport` for the
methods and the conventions of the returned columns)."""

from __future__ import annotations

import math
from typing import Any

from pymatgen.core import Species, Structure

from screening.errors import InputError, ScreeningError
from screening.schema import STATUS_NOT_APPLICABLE, STATUS_OK, Col
from screening.transport.bvse import NoPercolationError, bvse_barriers
from screening.transport.conductivity import (
    carrier_density_cm3,
    diffusivity_cm2_per_s,
    nernst_einstein_sigma_S_per_cm,
)
from screening.transport.landscape import LandscapeError
from screening.transport.oxidation import OxidationStateError, assign_oxidation_states
from screening.transport.registry import TRANSPORT_METHODS, TransportMethod

#: Columns of the results table this stage fills.
TRANSPORT_COLUMNS: tuple[Col, ...] = (
    Col.MOBILE_ION,
    Col.CARRIER_DENSITY,
    Col.EA,
    Col.EA_STD,
    Col.EA_METHOD,
    Col.EA_1D,
    Col.EA_2D,
    Col.EA_3D,
    Col.PERCOLATION_DIMENSIONALITY,
    Col.JUMP_DISTANCE,
    Col.ATTEMPT_FREQUENCY,
    Col.HAVEN_RATIO,
    Col.DIFFUSIVITY,
    Col.TEMPERATURE,
    Col.SIGMA,
    Col.LOG10_SIGMA,
    Col.OXIDATION_STATES_GUESSED,
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
    method: TransportMethod = "bvse",
    attempt_frequency_Hz: float = 1e13,
    haven_ratio: float = 1.0,
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
        **method_options: passed to :func:`screening.transport.bvse.bvse_barriers` (``grid_spacing_A``,
            ``cutoff_A``, ``max_barrier_eV``, ``min_jump_distance_A``) or to
            :func:`screening.transport.md.md_transport` (``temperatures_K``, ``n_steps``, ...).

    Returns:
        Results-table columns keyed by :class:`~screening.schema.Col` values, status ``ok`` or
        ``not applicable``.

    Raises:
        TransportError: the reason the structure gets no result.
    """
    if method not in TRANSPORT_METHODS:
        raise InputError(f"unknown transport method {method!r}; use one of {', '.join(TRANSPORT_METHODS)}")
    if not temperature_K > 0 or not haven_ratio > 0 or not attempt_frequency_Hz > 0:
        raise TransportError("temperature_K, haven_ratio and attempt_frequency_Hz must be positive")
    if mobile_ion not in {el.symbol for el in structure.composition.elements}:
        return _row(
            mobile_ion,
            temperature_K,
            method,
            status=STATUS_NOT_APPLICABLE,
            error=f"no {mobile_ion} in the structure",
        )
    n_cm3 = carrier_density_cm3(structure, mobile_ion)
    try:
        decorated, guessed = assign_oxidation_states(structure)
    except OxidationStateError as exc:
        raise TransportError(str(exc)) from exc
    charge = mobile_ion_charge(decorated, mobile_ion)
    common = {
        "carrier_density_cm3": n_cm3,
        "haven_ratio": haven_ratio,
        "oxidation_states_guessed": guessed,
        "status": STATUS_OK,
    }
    if method == "bvse":
        try:
            result = bvse_barriers(decorated, mobile_ion, charge, **method_options)
        except (LandscapeError, NoPercolationError) as exc:
            raise TransportError(str(exc)) from exc
        d_cm2_s = diffusivity_cm2_per_s(
            result.ea_eV, temperature_K, result.jump_distance_A, attempt_frequency_Hz
        )
        values = {
            "ea_eV": result.ea_eV,
            "ea_1d_eV": result.ea_1d_eV,
            "ea_2d_eV": result.ea_2d_eV,
            "ea_3d_eV": result.ea_3d_eV,
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
        d_cm2_s = md.diffusivity_cm2_per_s
        values = {"ea_eV": md.ea_eV, "ea_std_eV": md.ea_std_eV}
    sigma = nernst_einstein_sigma_S_per_cm(n_cm3, d_cm2_s, temperature_K, charge, haven_ratio)
    values.update(
        diffusivity_cm2_per_s=d_cm2_s,
        sigma_S_per_cm=sigma,
        log10_sigma_S_per_cm=math.log10(sigma) if sigma > 0 else -math.inf,
    )
    return _row(mobile_ion, temperature_K, method, **common, **values)
