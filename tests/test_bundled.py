"""The bundled default data set: published structures that build, validate and round-trip exactly."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from pymatgen.core import Composition, DummySpecies, Lattice, Structure

from screening.bond_valence import (
    BV_B_A,
    bond_valence_deviations,
    bond_valence_R0_A,
    bond_valence_sums,
)
from screening.bundled_records import CATEGORIES, BundledEntry, bundled_data_path, load_bundled_entries
from screening.schema import STATUS_FAILED, STATUS_OK, Col
from screening.sources.bundled import build_and_validate, iter_bundled_rows
from screening.structures import row_to_structure, structure_to_row
from screening.validation import composition_mismatch, validate_structure


@cache
def _entries() -> tuple[BundledEntry, ...]:
    return tuple(load_bundled_entries())


@cache
def _structure(entry_id: str) -> Structure:
    entry = next(e for e in _entries() if e.id == entry_id)
    return entry.structure()


@cache
def _rows() -> tuple[dict, ...]:
    """The structures-table rows of the shipped set, built once per test session."""
    return tuple(iter_bundled_rows())


_IDS = [entry.id for entry in _entries()]


def _entry(entry_id: str) -> BundledEntry:
    return next(e for e in _entries() if e.id == entry_id)


def test_data_folder_is_found_and_ids_are_unique():
    assert (bundled_data_path() / "structures.yaml").is_file()
    assert len(set(_IDS)) == len(_IDS)
    assert all(entry_id.startswith("bundled-") for entry_id in _IDS)


def test_set_is_large_and_has_published_disorder():
    entries = _entries()
    assert len(entries) >= 50
    assert sum(entry.is_disordered for entry in entries) >= 18
    categories = {entry.category for entry in entries}
    assert categories == set(CATEGORIES)
    mobile_ions = {entry.mobile_ion for entry in entries}
    assert {"Li", "Na"} <= mobile_ions


def test_known_materials_are_present():
    formulas = {Composition(entry.formula).reduced_formula for entry in _entries()}
    for formula in [
        "Li7La3Zr2O12",
        "Li6PS5Cl",
        "Li10GeP2S12",
        "Li1.3Al0.3Ti1.7(PO4)3",
        "LiTi2(PO4)3",
        "Li0.33La0.56TiO3",
        "LiFePO4",
        "LiCoO2",
        "Li4Ti5O12",
        "Li3N",
    ]:
        assert Composition(formula).reduced_formula in formulas, formula


@pytest.mark.parametrize("entry_id", _IDS)
def test_entry_validates(entry_id):
    entry = _entry(entry_id)
    assert validate_structure(_structure(entry_id), expected_formula=entry.formula) == []


@pytest.mark.parametrize("entry_id", _IDS)
def test_composition_equals_published_formula(entry_id):
    """Independent of the validator: atomic fractions (partial occupancies counted) match the formula."""
    structure = _structure(entry_id)
    published = Composition(_entry(entry_id).formula).fractional_composition
    actual = structure.composition.element_composition.fractional_composition
    assert set(published.elements) == set(actual.elements)
    for element in published.elements:
        assert actual[element] == pytest.approx(published[element], abs=5e-4), element


@pytest.mark.parametrize("entry_id", _IDS)
def test_charge_neutral_with_oxidation_states(entry_id):
    structure = _structure(entry_id)
    formula_units = structure.composition.num_atoms / Composition(_entry(entry_id).formula).num_atoms
    charge = math.fsum(sp.oxi_state * occ for site in structure for sp, occ in site.species.items())
    assert abs(charge / formula_units) < 0.02


@pytest.mark.parametrize("entry_id", _IDS)
def test_closest_anion_of_every_full_cation_is_at_a_bonding_distance(entry_id):
    structure = _structure(entry_id)
    for index, site in enumerate(structure):
        if len(site.species) != 1 or site.species.num_atoms < 1 - 1e-9:
            continue
        (specie,) = site.species
        if specie.oxi_state <= 0:
            continue
        anions = [n for n in structure.get_neighbors(site, 4.0) if all(sp.oxi_state < 0 for sp in n.species)]
        assert anions, f"site {index} ({specie}) has no anion within 4 A"
        closest_A = min(n.nn_distance for n in anions)
        # 1.45 A: the shortest bonds here are P-O (1.49-1.56 A in orthophosphates)
        assert 1.45 <= closest_A <= 3.5, f"site {index} ({specie}): closest anion {closest_A:.3f} A"


@pytest.mark.parametrize("entry_id", _IDS)
def test_bond_valence_sums_match_oxidation_states(entry_id):
    """Framework cations within 15 %, anions within 30 %, fully occupied Li/Na sites within 35 % of their
    oxidation states; partially occupied mobile-ion sites are not checked (split-site averages)."""
    deviations = bond_valence_deviations(_structure(entry_id))
    assert deviations == [], "; ".join(map(str, deviations))


@pytest.mark.parametrize("entry_id", _IDS)
def test_transport_metadata(entry_id):
    entry = _entry(entry_id)
    if entry.category == "solid_electrolyte":
        assert entry.mobile_ion is not None
    if entry.mobile_ion is not None:
        assert entry.mobile_ion in {el.symbol for el in Composition(entry.formula).elements} or (
            entry.category in {"cathode", "anode"}
        )
    if entry.sigma_rt_S_per_cm is not None:
        assert entry.mobile_ion is not None
        assert 1e-16 < entry.sigma_rt_S_per_cm < 1.0
        assert entry.sigma_kind
        assert entry.conductivity_reference
    if entry.ea_eV is not None:
        assert 0.05 < entry.ea_eV < 2.0
        assert entry.conductivity_reference
    assert entry.reference


def test_conductivity_data_cover_good_and_poor_conductors():
    sigmas = [entry.sigma_rt_S_per_cm for entry in _entries() if entry.sigma_rt_S_per_cm is not None]
    assert len(sigmas) >= 12
    assert max(sigmas) >= 1e-2 and min(sigmas) <= 1e-6  # several decades for rank correlations
    superionic = [sigma for sigma in sigmas if sigma >= 1e-4]
    assert 0 < len(superionic) < len(sigmas)  # both classes present for the top-half test


def test_rows_are_ok_and_round_trip_exactly():
    rows = _rows()
    assert [row[Col.ID] for row in rows] == _IDS
    for row in rows:
        assert row[Col.STATUS] == STATUS_OK, row.get(Col.ERROR)
        entry = _entry(row[Col.ID])
        assert row[Col.SOURCE] == "bundled"
        assert row[Col.IS_ORDERED] is (not entry.is_disordered)
        assert row[Col.NAME] == entry.name and row[Col.REFERENCE] == entry.reference
        assert row[Col.EXP_SIGMA_RT] == entry.sigma_rt_S_per_cm and row[Col.EXP_EA] == entry.ea_eV
        original = _structure(row[Col.ID])
        rebuilt = row_to_structure(row)
        np.testing.assert_allclose(rebuilt.lattice.matrix, original.lattice.matrix, atol=1e-12)
        np.testing.assert_allclose(rebuilt.cart_coords, original.cart_coords, atol=1e-12)
        assert [dict(s.species) for s in rebuilt] == [dict(s.species) for s in original]


def test_loading_is_silent_and_summarises_in_one_line(capsys):
    rows = list(iter_bundled_rows())  # not the cached rows: loading itself must print nothing
    disordered = sum(not row[Col.IS_ORDERED] for row in rows)
    summary = f"{len(rows)} bundled structures, {disordered} disordered"
    assert "\n" not in summary and len(rows) >= 50 and disordered >= 18
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ---------------------------------------------------------------- validation failure modes


def _rock_salt(**overrides) -> Structure:
    species = overrides.get("species", [{"Li+": 1.0}, {"F-": 1.0}])
    coords = overrides.get("coords", [[0, 0, 0], [0.5, 0.5, 0.5]])
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.027), species, coords)


def test_validator_accepts_a_good_structure():
    assert validate_structure(_rock_salt(), expected_formula="LiF") == []


def test_validator_flags_overfull_site():
    # pymatgen refuses to build an overfull site, so overfill one of a built structure (as a parser
    # with a looser tolerance could hand over)
    structure = _rock_salt()
    structure[0]._species = Composition({"Li+": 0.8, "Na+": 0.3})
    problems = validate_structure(structure)
    assert any("total occupancy 1.1" in p for p in problems)


def test_validator_flags_unknown_element():
    structure = Structure(Lattice.cubic(4.0), [DummySpecies("X", 1), "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert any("unknown element" in p for p in validate_structure(structure))


def test_validator_flags_empty_structure():
    assert validate_structure(Structure(Lattice.cubic(4.0), [], [])) == ["structure has no sites"]


def test_validator_flags_fully_occupied_atoms_too_close():
    # Li at 1.2 A from F: both fully occupied, below 0.7 * (r_Li + r_F) = 1.36 A
    structure = Structure(Lattice.cubic(6.0), ["Li", "F"], [[0, 0, 0], [0.2, 0, 0]])
    problems = validate_structure(structure)
    assert any("too close" in p for p in problems)


def test_validator_keeps_close_split_sites_but_applies_the_absolute_floor():
    split = Structure(Lattice.cubic(6.0), [{"Li": 0.5}, {"Li": 0.5}], [[0, 0, 0], [0.12, 0, 0]])
    assert validate_structure(split) == []  # 0.72 A apart, never occupied together
    overlapping = Structure(Lattice.cubic(6.0), [{"Li": 0.5}, {"Li": 0.5}], [[0, 0, 0], [0.05, 0, 0]])
    assert any("too close" in p for p in validate_structure(overlapping))  # 0.30 A < 0.5 A floor
    both_needed = Structure(Lattice.cubic(6.0), [{"Li": 0.8}, {"Li": 0.8}], [[0, 0, 0], [0.12, 0, 0]])
    assert any("too close" in p for p in validate_structure(both_needed))


def test_validator_flags_composition_mismatch():
    structure = _rock_salt(species=[{"Li+": 0.9}, {"F-": 1.0}])
    assert any("composition does not match LiF" in p for p in validate_structure(structure, "LiF"))
    assert validate_structure(structure, "Li0.9F") == []
    assert composition_mismatch(structure.composition, "Li0.9F") is None
    assert "Cl" in composition_mismatch(structure.composition, "LiCl")


def test_broken_entries_become_failed_rows(tmp_path):
    good = """
- id: bundled-test-LiF
  name: LiF
  formula: LiF
  category: reference_binary
  mobile_ion: Li
  spacegroup: Fm-3m
  lattice: {a: 4.027, b: 4.027, c: 4.027, alpha: 90, beta: 90, gamma: 90}
  sites:
    - {label: Li1, species: {Li+: 1.0}, coords: [0, 0, 0]}
    - {label: F1, species: {F-: 1.0}, coords: [1/2, 1/2, 1/2]}
  reference: test
"""
    wrong_formula = good.replace("bundled-test-LiF", "bundled-test-wrong").replace(
        "formula: LiF", "formula: LiCl"
    )
    no_lattice = good.replace("bundled-test-LiF", "bundled-test-nolattice").replace(
        "  lattice: {a: 4.027, b: 4.027, c: 4.027, alpha: 90, beta: 90, gamma: 90}\n", ""
    )
    overfull = good.replace("bundled-test-LiF", "bundled-test-overfull").replace("{Li+: 1.0}", "{Li+: 1.2}")
    path = tmp_path / "entries.yaml"
    path.write_text(good + wrong_formula + no_lattice + overfull, encoding="utf-8")
    rows = {row[Col.ID]: row for row in iter_bundled_rows(path)}
    assert rows["bundled-test-LiF"][Col.STATUS] == STATUS_OK
    assert rows["bundled-test-wrong"][Col.STATUS] == STATUS_FAILED
    assert "composition does not match LiCl" in rows["bundled-test-wrong"][Col.ERROR]
    assert "missing field(s) lattice" in rows["bundled-test-nolattice"][Col.ERROR]
    assert "total occupancy 1.2" in rows["bundled-test-overfull"][Col.ERROR]
    with pytest.raises(ValueError, match="missing field"):
        load_bundled_entries(path)


def test_build_and_validate_raises_with_every_problem():
    entry = _entries()[0]
    broken = BundledEntry(**{**entry.__dict__, "formula": "Li2F"})
    with pytest.raises(ValueError, match="composition does not match Li2F"):
        build_and_validate(broken)


def test_structure_to_row_keeps_disorder_of_bundled_garnet():
    structure = _structure("bundled-Li7La3Zr2O12-cubic")
    row = structure_to_row(structure, "x", "bundled")
    assert not row[Col.IS_ORDERED] and "disorder" in row[Col.STRUCTURE_FEATURES]
    lithium_entries = [s for s in row[Col.SPECIES] if "Li" in s["chemical_symbols"]]
    assert sorted(round(s["concentration"][0], 3) for s in lithium_entries) == [0.442, 0.564]


# ---------------------------------------------------------------- bond-valence sums


def test_element_based_R0_reproduces_the_published_table():
    # Brese & O'Keeffe (1991) list Ti4+-O 1.815 A and Zr4+-O 1.937 A
    assert bond_valence_R0_A("Ti", "O") == pytest.approx(1.815, abs=0.005)
    assert bond_valence_R0_A("Zr", "O") == pytest.approx(1.937, abs=0.02)
    # oxidation-state-specific values replace the element-based one where it is off
    assert bond_valence_R0_A("P", "O") == pytest.approx(1.697, abs=0.005)
    assert bond_valence_R0_A("P", "O", 5) == 1.617
    with pytest.raises(ValueError, match="no bond-valence parameters"):
        bond_valence_R0_A("Li", "Xe")


def test_bond_valence_sum_of_rock_salt_by_hand():
    structure = _rock_salt()  # LiF, a = 4.027 A
    r0_A = bond_valence_R0_A("Li", "F")
    # 6 F at a/2, 8 F at a*sqrt(3)/2 (inside the 4.5 A cutoff); the next shell is at 4.5 A and beyond
    expected = 6 * math.exp((r0_A - 4.027 / 2) / BV_B_A) + 8 * math.exp(
        (r0_A - 4.027 * math.sqrt(3) / 2) / BV_B_A
    )
    sums = bond_valence_sums(structure)
    assert sums[0]["Li+"] == pytest.approx(expected, rel=1e-9)
    assert sums[-1]["F-"] == pytest.approx(expected, rel=1e-9)


def test_bond_valence_sums_weight_neighbours_by_occupancy():
    full = bond_valence_sums(_rock_salt())
    half_anions = bond_valence_sums(_rock_salt(species=[{"Li+": 1.0}, {"F-": 0.5}]))
    assert half_anions[0]["Li+"] == pytest.approx(full[0]["Li+"] / 2, rel=1e-9)
    mixed = bond_valence_sums(_rock_salt(species=[{"Li+": 0.5, "Na+": 0.5}, {"F-": 1.0}]))
    # each species of a mixed site gets its own sum over the same bonds; the anion sees both halves
    assert mixed[0]["Li+"] == pytest.approx(full[0]["Li+"], rel=1e-9)
    assert mixed[0]["Na+"] > mixed[0]["Li+"]
    assert mixed[-1]["F-"] == pytest.approx((mixed[0]["Li+"] + mixed[0]["Na+"]) / 2, rel=1e-9)


def test_bond_valence_check_catches_a_wrong_coordinate_the_validator_misses():
    entry = _entry("bundled-LiCoO2")
    sites = tuple(
        type(site)(label=site.label, species=site.species, coords=(0.0, 0.0, 0.22))
        if site.label == "O1"
        else site
        for site in entry.sites
    )
    broken = BundledEntry(**{**entry.__dict__, "sites": sites})
    structure = broken.structure()
    assert validate_structure(structure, broken.formula) == []  # no clash, right composition
    deviations = bond_valence_deviations(structure)
    assert any("Co3+" in d.species and d.relative_deviation > 0.15 for d in deviations)
    with pytest.raises(ValueError, match="bond-valence sum off"):
        build_and_validate(broken)


def test_bond_valence_sums_need_oxidation_states():
    structure = Structure(Lattice.cubic(4.027), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match="no oxidation state"):
        bond_valence_sums(structure)


@pytest.mark.parametrize(("li_occupancy", "checked"), [(1.0, True), (0.9995, True), (0.9, False)])
def test_a_mobile_ion_site_full_within_published_rounding_is_checked(li_occupancy, checked):
    # rock-salt LiF squeezed to a = 3.4 A: every sum far above its valence. A Li site refined to 0.9995 is
    # full (the project's one rounding tolerance) and checked; a Li site at 0.9 is a partial mobile site
    squeezed = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(3.4), [{"Li+": li_occupancy}, "F-"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    flagged = {d.species for d in bond_valence_deviations(squeezed)}
    assert any("F" in species for species in flagged)
    assert any("Li" in species for species in flagged) == checked
