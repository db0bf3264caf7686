"""Screening criteria: the electronic-conductor rule (band gap first, then redox-active cations), cost
and supply risk from pymatgen's shipped data, and the criteria columns of a row."""

from __future__ import annotations

import json
import math

import pytest

from screening.criteria import (
    BAND_GAP_THRESHOLD_eV,
    compute_criteria,
    cost_USD_per_kg,
    electronic_conductor,
    hhi,
)
from screening.schema import Col


@pytest.mark.parametrize(
    ("states", "flag", "why"),
    [
        ({"Li": 1, "Mn": 3.5, "O": -2}, True, "Mn +3.50 (mixed valence)"),  # LiMn2O4
        ({"Li": 1, "Ni": 2, "Mn": 4, "O": -2}, True, "Mn+4 (d3, open shell), Ni+2 (d8, open shell)"),  # LNMO
        ({"Li": 1, "Co": 3, "O": -2}, True, "Co+3 (d6"),  # LiCoO2
        ({"Li": 1, "Fe": 2, "P": 5, "O": -2}, True, "Fe+2 (d6"),  # LiFePO4
        ({"Li": 1, "Ti": 4, "P": 5, "O": -2}, False, "closed-shell"),  # LiTi2(PO4)3: d0
        ({"Li": 1, "La": 3, "Zr": 4, "Ta": 5, "O": -2}, False, "closed-shell"),  # LLZTO: d0
        ({"Li": 1, "Ge": 4, "P": 5, "S": -2}, False, "closed-shell"),  # LGPS: main group
        ({"Li": 1, "Ga": 3, "La": 3, "Zr": 4, "O": -2}, False, "closed-shell"),  # Ga3+ is d10
        ({"Li": 1, "Cu": 1, "S": -2}, False, "closed-shell"),  # Cu+ is d10
    ],
)
def test_redox_rule_flags_the_cathodes_and_not_the_electrolytes(states, flag, why):
    got, reason = electronic_conductor(None, states)
    assert got is flag
    assert why in reason


def test_a_known_band_gap_decides_before_the_rule():
    assert electronic_conductor(0.3, {"Li": 1, "Ti": 4, "O": -2})[0] is True
    assert electronic_conductor(3.0, {"Li": 1, "Co": 3, "O": -2})[0] is False
    assert electronic_conductor(BAND_GAP_THRESHOLD_eV, None)[0] is False  # at the threshold: insulator
    assert electronic_conductor(math.nan, {"Li": 1, "Co": 3, "O": -2})[0] is True  # NaN: unknown gap
    flag, reason = electronic_conductor(None, None)
    assert flag is None and reason.startswith("unknown")


def test_cost_and_hhi_from_pymatgens_tables_offline():
    # by hand from costdb_elements.csv: Li 3.869 USD/kg, O 3 USD/kg; Li2O is 46.45 % Li by weight
    li2o = cost_USD_per_kg("Li2O")
    w_li = 2 * 6.941 / (2 * 6.941 + 15.999)
    assert li2o == pytest.approx(w_li * 3.8691081 + (1 - w_li) * 3.0, rel=1e-3)
    assert cost_USD_per_kg("Li10GeP2S12") > 2 * cost_USD_per_kg("Li3PS4")  # Ge: 1450 USD/kg
    production, reserve = hhi("Li7La3Zr2O12")
    assert 0 < production <= 10000 and 0 < reserve <= 10000
    assert hhi("Li7La3Zr2O12")[0] > hhi("Li3PS4")[0]  # rare earths: concentrated production
    with pytest.raises(ValueError, match="HHI"):
        hhi("LiTc")


def test_compute_criteria_fills_every_column_and_notes_what_it_cannot(shipped_references):
    references = shipped_references
    states = json.dumps({"Li": 1, "Mn": 3.5, "O": -2})
    row = compute_criteria(
        "LiMn2O4", mobile_ion="Li", e_above_hull_eV=0.02, references=references, oxidation_states=states
    )
    assert row[Col.ELECTRONIC_CONDUCTOR] is True and "Mn" in row[Col.ELECTRONIC_CONDUCTOR_REASON]
    assert 0 < row[Col.ECW_LOW] <= row[Col.ECW_HIGH] and row[Col.ECW_ENERGY_SHIFT] == pytest.approx(0.02)
    assert row[Col.ECW_REDUCTION_PRODUCTS] and row[Col.ECW_OXIDATION_PRODUCTS]
    assert row[Col.COST] > 0 and row[Col.HHI_PRODUCTION] > 0 and row[Col.CRITERIA_NOTES] == []
    # no mobile ion: no window, the rest still there
    tio2 = compute_criteria("TiO2", mobile_ion="Li", e_above_hull_eV=0.0, references=references)
    assert Col.ECW_LOW not in tio2 and tio2[Col.COST] > 0 and tio2[Col.ELECTRONIC_CONDUCTOR] is None
    # stability failed: the window says why, nothing raises
    failed = compute_criteria("Li2O", mobile_ion="Li", e_above_hull_eV=None, references=references)
    assert Col.ECW_LOW not in failed and failed[Col.CRITERIA_NOTES][0].startswith("window:")
    # an element without HHI data: a note, not an error
    assert any(n.startswith("hhi:") for n in compute_criteria("LiTc", mobile_ion="Li")[Col.CRITERIA_NOTES])


#: The electrode materials of the bundled set that contain Li (cathodes with redox-active metals).
BUNDLED_CATHODES = {
    "bundled-LiCoO2",
    "bundled-LiFeO2-alpha",
    "bundled-LiFePO4",
    "bundled-LiMn0.5Fe0.5PO4",
    "bundled-LiMn2O4",
    "bundled-LiNi0.5Mn1.5O4-disordered",
    "bundled-LiNi0.8Mn0.1Co0.1O2",
    "bundled-LiNi1/3Mn1/3Co1/3O2",
    "bundled-LiNiO2",
}


def test_on_the_bundled_set_the_cathodes_are_flagged_and_the_electrolytes_not():
    from screening.sources.bundled import iter_bundled_rows
    from screening.structures import row_to_structure
    from screening.transport.oxidation import assign_oxidation_states

    flagged, clean = set(), set()
    for row in iter_bundled_rows():
        if row[Col.STATUS] != "ok" or "Li" not in row[Col.ELEMENTS]:
            continue
        states = assign_oxidation_states(row_to_structure(row)).mean_states  # as the transport stage does
        flag, _ = electronic_conductor(row.get(Col.MP_BAND_GAP), states)
        (flagged if flag else clean).add(row[Col.ID])
    assert flagged == BUNDLED_CATHODES
    for electrolyte in (
        "bundled-Li7La3Zr2O12-cubic",
        "bundled-Li6.4La3Zr1.4Ta0.6O12",
        "bundled-Li10GeP2S12",
        "bundled-Li6PS5Cl",
        "bundled-Li0.33La0.56TiO3",
        "bundled-Li1.3Al0.3Ti1.7(PO4)3",
        "bundled-Li3OCl",
        "bundled-Li3N",
    ):
        assert electrolyte in clean
