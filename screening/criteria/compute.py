"""The criteria columns of one structure's results row."""

from __future__ import annotations

import math
from typing import Any

from pymatgen.core import Composition

from screening.criteria.electronic import electronic_conductor, parse_oxidation_states
from screening.criteria.supply import cost_USD_per_kg, hhi
from screening.schema import Col, is_missing


def _window(
    composition: Composition, mobile_ion: str, e_above_hull_eV: Any, references: Any, notes: list[str]
) -> dict[str, Any]:
    from screening.thermo.window import electrochemical_window
    from screening.transport.registry import MOBILE_IONS

    if composition[mobile_ion] <= 0:
        return {}
    if is_missing(e_above_hull_eV) or references is None:
        notes.append("window: no energy above the hull (stability failed)")
        return {}
    try:
        symbols = [el.symbol for el in composition.elements]
        diagram = references.for_composition(composition).phase_diagram(symbols)
        window = electrochemical_window(
            composition, float(e_above_hull_eV), diagram, mobile_ion, charge=MOBILE_IONS.get(mobile_ion, 1)
        )
    except Exception as exc:  # noqa: BLE001 - a criterion that fails leaves a note, never fails the row
        notes.append(f"window: {type(exc).__name__}: {exc}")
        return {}
    return {
        Col.ECW_LOW: window.low_V,
        Col.ECW_HIGH: window.high_V,
        Col.ECW_REDUCTION_PRODUCTS: window.reduction_products,
        Col.ECW_OXIDATION_PRODUCTS: window.oxidation_products,
        Col.ECW_ENERGY_SHIFT: window.energy_shift_eV,
    }


def compute_criteria(
    composition: Composition | str,
    *,
    mobile_ion: str,
    e_above_hull_eV: float | None = None,
    references: Any = None,
    band_gap_eV: float | None = None,
    oxidation_states: str | dict[str, float] | None = None,
) -> dict[str, Any]:
    """Electrochemical window, electronic-conductor flag, cost and supply risk of one structure.

    Never raises: a criterion that cannot be computed stays null and says why in ``criteria_notes``.

    Args:
        composition: the structure's composition (disordered: fractional).
        mobile_ion: the run's mobile ion; the window is computed against its metal, for structures that
            contain it.
        e_above_hull_eV: from the stability stage (the window places the candidate on the same hull).
        references: the stability stage's ``ReferenceSet`` (after hull completion).
        band_gap_eV: a known band gap (``_mp_band_gap``), or None.
        oxidation_states: the transport stage's ``oxidation_states`` (JSON text or dict), or None.

    Returns:
        The criteria columns (``Col.ECW_*``, ``Col.ELECTRONIC_CONDUCTOR*``, ``Col.COST``, ``Col.HHI_*``,
        ``Col.CRITERIA_NOTES``); window columns absent when the structure lacks the mobile ion.
    """
    composition = Composition(composition).element_composition
    notes: list[str] = []
    out: dict[str, Any] = _window(composition, mobile_ion, e_above_hull_eV, references, notes)
    gap = None if is_missing(band_gap_eV) else float(band_gap_eV)
    flag, reason = electronic_conductor(gap, parse_oxidation_states(oxidation_states))
    out[Col.ELECTRONIC_CONDUCTOR] = flag
    out[Col.ELECTRONIC_CONDUCTOR_REASON] = reason
    try:
        out[Col.COST] = cost_USD_per_kg(composition)
    except ValueError as exc:
        notes.append(f"cost: {exc}")
    try:
        out[Col.HHI_PRODUCTION], out[Col.HHI_RESERVE] = hhi(composition)
    except ValueError as exc:
        notes.append(f"hhi: {exc}")
    for key in (Col.COST, Col.HHI_PRODUCTION, Col.HHI_RESERVE):
        if key in out and not math.isfinite(out[key]):
            notes.append(f"{key}: not finite")
            out[key] = None
    out[Col.CRITERIA_NOTES] = notes
    return out
