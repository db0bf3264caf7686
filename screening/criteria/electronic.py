"""Is a candidate likely an electronic conductor? A solid electrolyte must be an electronic insulator.

Two sources, in this order:

1. A known band gap (``_mp_band_gap``, PBE/PBE+U from the Materials Project): a conductor when it is
   below :data:`BAND_GAP_THRESHOLD_eV`. PBE underestimates gaps, typically by 30-50 %, so 1 eV keeps
   the wide-gap insulators and removes metals and small-gap semiconductors.
2. Otherwise a chemical rule on the oxidation states the transport stage assigned (bond valence; the
   ``oxidation_states`` JSON column, element -> mean oxidation state): a cation that can change its
   valence in place conducts electrons by polaron hopping and is reduced or oxidised at an electrode.
   Flagged are

   * a mixed (non-integer) mean valence of a transition metal or lanthanide (Mn +3.5 in LiMn2O4,
     Co +3/+4 in a delithiated layered oxide): electron hopping between the two valences;
   * a d-block cation with a partly filled d shell (d1 to d9: Co3+ d6, Ni2+ d8, Mn4+ d3, Fe2+ d6): the
     redox-active centres of every intercalation electrode. d0 (Ti4+, Zr4+, Nb5+, Ta5+, La3+) and d10
     (Zn2+, Ga3+, Ge4+, In3+, Sn4+, Cu+, Ag+) cations are not flagged: their gaps are wide.

   The rule is a screen, not a band structure: LiFePO4 (measured 1e-9 S/cm electronically, yet a
   cathode) is flagged, which is what a solid-electrolyte screen wants; Ti4+ compounds such as
   LiTi2(PO4)3 are not, although they are reduced near 2.5 V vs Li (the window catches that).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from pymatgen.core import Element

#: Band gaps (eV, PBE) below this mark an electronic conductor.
BAND_GAP_THRESHOLD_eV = 1.0

#: A mean oxidation state this far from an integer is a mixed valence.
_MIXED_TOLERANCE = 0.05


def _d_electrons(element: Element, oxidation_state: float) -> int | None:
    """d-electron count of a d-block cation (group minus oxidation state), None for other elements."""
    if not element.is_transition_metal or element.group is None or not 3 <= element.group <= 12:
        return None
    return int(round(element.group - oxidation_state))


def _redox_reasons(oxidation_states: Mapping[str, float]) -> list[str]:
    reasons = []
    for symbol, state in sorted(oxidation_states.items()):
        element = Element(symbol)
        if state <= 0 or not (element.is_transition_metal or element.is_lanthanoid):
            continue
        if abs(state - round(state)) > _MIXED_TOLERANCE:
            reasons.append(f"{symbol} {state:+.2f} (mixed valence)")
            continue
        d = _d_electrons(element, state)
        if d is not None and 0 < d < 10:
            reasons.append(f"{symbol}{int(round(state)):+d} (d{d}, open shell)")
    return reasons


def parse_oxidation_states(text: str | Mapping[str, float] | None) -> dict[str, float] | None:
    """The ``oxidation_states`` column (JSON text) as a dict, None when missing or unreadable."""
    if text is None:
        return None
    if isinstance(text, Mapping):
        return {str(k): float(v) for k, v in text.items()}
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) else None


def electronic_conductor(
    band_gap_eV: float | None, oxidation_states: Mapping[str, float] | None
) -> tuple[bool | None, str]:
    """Whether a candidate is likely an electronic conductor, and why (see the module docstring).

    Args:
        band_gap_eV: a known band gap, eV (None or NaN: unknown).
        oxidation_states: element -> mean oxidation state (None: unknown).

    Returns:
        ``(flag, reason)``; ``flag`` is None when neither a gap nor oxidation states are known.
    """
    if band_gap_eV is not None and math.isfinite(band_gap_eV):
        if band_gap_eV < BAND_GAP_THRESHOLD_eV:
            return True, f"band gap {band_gap_eV:.2f} eV < {BAND_GAP_THRESHOLD_eV:g} eV (_mp_band_gap)"
        return False, f"band gap {band_gap_eV:.2f} eV >= {BAND_GAP_THRESHOLD_eV:g} eV (_mp_band_gap)"
    if not oxidation_states:
        return None, "unknown: no band gap and no oxidation states"
    reasons = _redox_reasons(oxidation_states)
    if reasons:
        return True, "redox-active cation: " + ", ".join(reasons)
    return False, "no band gap known; closed-shell cations (main group, d0 or d10) at integer valence"
