"""Ingest keeps what is published: only unusable structures fail; odd but usable ones carry warnings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
from pymatgen.core import Composition, Lattice, Species, Structure

from screening.io import read_table, write_dataset
from screening.schema import STRUCTURES_SCHEMA, Col
from screening.sources.files import iter_file_rows
from screening.validation import check_structure, validate_structure

CUBIC_6A = Lattice.cubic(6.0)


def kinds(warnings: list[str]) -> list[str]:
    return [w.split(":")[0] for w in warnings]


def json_row(tmp_path: Path, structure: Structure) -> dict:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(structure.as_dict()))
    (row,) = iter_file_rows([path])
    return row


def test_garnet_24d_96h_pair_over_one_is_a_short_contact_warning(tmp_path: Path) -> None:
    # Li 24d (0.96) and 96h (0.31) 1.65 A apart: together more than one atom, so sometimes both filled
    structure = Structure(
        CUBIC_6A, [{"Li": 0.96}, {"Li": 0.31}, "O"], [[0, 0, 0], [0.275, 0, 0], [0.5, 0.5, 0.5]]
    )
    row = json_row(tmp_path, structure)
    assert row[Col.STATUS] == "ok", row[Col.ERROR]
    assert kinds(row[Col.WARNINGS]) == ["short contacts"]
    assert "1.650 A apart" in row[Col.WARNINGS][0]
    assert row[Col.IS_ORDERED] is False  # the disorder is kept


def test_li_split_pair_with_small_occupancies_is_kept(tmp_path: Path) -> None:
    structure = Structure(
        CUBIC_6A, [{"Li": 0.1}, {"Li": 0.1}, "O"], [[0, 0, 0], [0.05, 0, 0], [0.5, 0.5, 0.5]]
    )
    row = json_row(tmp_path, structure)  # 0.30 A apart
    assert row[Col.STATUS] == "ok", row[Col.ERROR]
    assert kinds(row[Col.WARNINGS]) == ["split positions very close"]


def test_overfilled_split_positions_are_kept_with_a_warning(tmp_path: Path) -> None:
    structure = Structure(
        CUBIC_6A, [{"Li": 0.54}, {"Li": 0.54}, "O"], [[0, 0, 0], [0.07, 0, 0], [0.5, 0.5, 0.5]]
    )
    row = json_row(tmp_path, structure)  # 0.42 A apart, 1.08 atoms
    assert row[Col.STATUS] == "ok", row[Col.ERROR]
    assert kinds(row[Col.WARNINGS]) == ["split positions overfilled"]
    assert "1.08" in row[Col.WARNINGS][0]


def test_a_group_of_split_positions_asking_for_more_atoms_than_it_holds_is_a_warning(tmp_path: Path) -> None:
    """Three Li 0.5 positions 0.7 A apart pairwise add up to 1 (no pair is overfilled) but ask for 1.5 Li
    where one fits, which the configuration sampler cannot realise: ingest keeps the row and says so. A
    chain of four such positions 0.8 A apart holds two (its ends are 2.4 A apart) and asks for two."""
    side_A = 0.7
    triangle = [[0, 0, 0], [side_A, 0, 0], [side_A / 2, side_A * math.sqrt(3) / 2, 0]]
    structure = Structure(
        CUBIC_6A, [{"Li": 0.5}] * 3 + ["Cl"], [*triangle, [3.0, 3.0, 3.0]], coords_are_cartesian=True
    )
    row = json_row(tmp_path, structure)
    assert row[Col.STATUS] == "ok", row[Col.ERROR]
    assert kinds(row[Col.WARNINGS]) == ["split positions overfilled"]
    assert "1 group(s) of 3 or more positions" in row[Col.WARNINGS][0]
    assert "adding up to 1.5, room for 1" in row[Col.WARNINGS][0]

    chain = [[0.8 * k, 0, 0] for k in range(4)]
    structure = Structure(
        CUBIC_6A, [{"Li": 0.5}] * 4 + ["Cl"], [*chain, [3.0, 3.0, 3.0]], coords_are_cartesian=True
    )
    assert json_row(tmp_path, structure)[Col.WARNINGS] == []


def test_noisy_short_bond_of_fully_occupied_atoms_is_a_warning(tmp_path: Path) -> None:
    # NASICON-like P-O 1.11 A (0.64 of the covalent radii): OBELiX coordinate noise, not a broken crystal
    structure = Structure(CUBIC_6A, ["P", "O"], [[0, 0, 0], [1.11 / 6, 0, 0]])
    row = json_row(tmp_path, structure)
    assert row[Col.STATUS] == "ok", row[Col.ERROR]
    assert kinds(row[Col.WARNINGS]) == ["short contacts"]


def test_fully_occupied_atoms_on_top_of_each_other_fail(tmp_path: Path) -> None:
    structure = Structure(CUBIC_6A, ["O", "F"], [[0, 0, 0], [0.6 / 6, 0, 0]])
    row = json_row(tmp_path, structure)
    assert row[Col.STATUS] == "failed"
    assert row[Col.ERROR].startswith("atoms on top of each other: 1 site pair(s)")


def test_unusable_structures_fail(tmp_path: Path) -> None:
    nan = Structure(CUBIC_6A, ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    nan["sites"][0]["abc"] = [math.nan, 0, 0]
    nan["sites"][0]["xyz"] = [math.nan, 0, 0]
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(nan))
    (row,) = iter_file_rows([path])
    assert row[Col.STATUS] == "failed" and "NaN" in row[Col.ERROR]
    overfull = Structure(CUBIC_6A, ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    overfull[0]._species = Composition({"Li": 0.7, "Na": 0.4})  # as a looser parser could hand over
    assert "total occupancy 1.1000 > 1" in check_structure(overfull).problems[0]
    assert not check_structure(Structure(CUBIC_6A, [], [])).ok


def test_composition_differing_from_the_published_formula_is_a_warning(tmp_path: Path) -> None:
    cif = (
        "data_x\n_chemical_formula_sum 'Li2 F1'\n_cell_length_a 4.0\n_cell_length_b 4.0\n_cell_length_c 4.0\n"
        "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'P 1'\n"
        "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
        "_atom_site_fract_z\n_atom_site_occupancy\nLi1 Li 0 0 0 1\nF1 F 0.5 0.5 0.5 1\n"
    )
    (tmp_path / "f.cif").write_text(cif)
    (row,) = iter_file_rows([tmp_path / "f.cif"])
    assert row[Col.STATUS] == "ok"
    assert kinds(row[Col.WARNINGS]) == ["composition does not match Li2 F1"]
    (tmp_path / "g.cif").write_text(cif.replace("'Li2 F1'", "'Li F'"))
    (row,) = iter_file_rows([tmp_path / "g.cif"])
    assert row[Col.WARNINGS] == []


def test_bond_valence_sums_off_are_a_warning_when_oxidation_states_are_given(tmp_path: Path) -> None:
    # rock-salt LiF squeezed to a = 3.4 A: every bond 15 % short, the sums far above 1
    squeezed = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(3.4), [Species("Li", 1), Species("F", -1)], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    row = json_row(tmp_path, squeezed)
    assert row[Col.STATUS] == "ok", row[Col.ERROR]
    assert kinds(row[Col.WARNINGS]) == ["bond-valence sums off at 8 site(s)"]
    plain = squeezed.copy()
    plain.remove_oxidation_states()
    assert check_structure(plain).warnings == []  # no oxidation states: not checked


def test_strict_validation_of_curated_data_still_lists_every_oddity() -> None:
    structure = Structure(
        CUBIC_6A, [{"Li": 0.54}, {"Li": 0.54}, "O"], [[0, 0, 0], [0.07, 0, 0], [0.5, 0.5, 0.5]]
    )
    check = check_structure(structure, "Li2O")
    assert check.ok and len(check.warnings) == 2
    assert validate_structure(structure, "Li2O") == check.warnings


def test_warnings_and_hash_columns_go_through_parquet(tmp_path: Path, disordered_rocksalt: Structure) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.json").write_text(json.dumps(disordered_rocksalt.as_dict()))
    (tmp_path / "in" / "bad.json").write_text("{}")
    split = Structure(CUBIC_6A, [{"Li": 0.1}, {"Li": 0.1}, "O"], [[0, 0, 0], [0.05, 0, 0], [0.5, 0.5, 0.5]])
    (tmp_path / "in" / "split.json").write_text(json.dumps(split.as_dict()))
    rows = list(iter_file_rows([tmp_path / "in"]))
    write_dataset(rows, tmp_path / "table")
    table = read_table(tmp_path / "table")
    assert table.schema.field(Col.WARNINGS).type == pa.list_(pa.string())
    back = {row[Col.ID]: row for row in table.to_pylist()}
    assert back["good.json"][Col.WARNINGS] == [] and back["bad.json"][Col.WARNINGS] == []
    assert kinds(back["split.json"][Col.WARNINGS]) == ["split positions very close"]
    assert back["bad.json"][Col.STRUCTURE_SHA256] is None
    assert len(back["good.json"][Col.STRUCTURE_SHA256]) == 64
    assert {Col.WARNINGS, Col.STRUCTURE_SHA256} <= set(STRUCTURES_SCHEMA.names)


def test_a_round_trip_through_a_file_keeps_the_hash(tmp_path: Path, disordered_rocksalt: Structure) -> None:
    from pymatgen.io.cif import CifWriter

    from screening.structures import content_sha256, row_to_structure

    CifWriter(disordered_rocksalt).write_file(tmp_path / "a.cif")
    (row,) = iter_file_rows([tmp_path / "a.cif"])
    (tmp_path / "b.json").write_text(json.dumps(row_to_structure(row).as_dict()))
    (again,) = iter_file_rows([tmp_path / "b.json"])
    assert again[Col.STRUCTURE_SHA256] == row[Col.STRUCTURE_SHA256] == content_sha256(row)
