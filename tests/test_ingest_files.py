"""Every input the user names becomes a row or a listed reason: the cases of the ingest issue."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pymatgen.core import Structure
from pymatgen.io.vasp import Poscar

from screening.errors import ScreeningError
from screening.schema import Col
from screening.sources.files import InputPathError, discover_files, iter_file_rows

CELL = """_cell_length_a 4.0
_cell_length_b 4.0
_cell_length_c 4.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
"""
LIF_SITES = "Li1 Li 0 0 0 1\nF1 F 0.5 0.5 0.5 1\n"

POSCAR_HEAD = "LiF\n1.0\n4.0 0 0\n0 4.0 0\n0 0 4.0\nLi F\n"


def cif(sites: str = LIF_SITES, name: str = "x", cell: str = CELL) -> str:
    return f"data_{name}\n{cell}{sites}"


def rows_by_id(paths: list[Path]) -> dict[str, dict]:
    rows = list(iter_file_rows(paths))
    ids = [row[Col.ID] for row in rows]
    assert len(ids) == len(set(ids)), ids
    return {row[Col.ID]: row for row in rows}


def only_row(path: Path) -> dict:
    (row,) = iter_file_rows([path])
    return row


def assert_failed(row: dict, reason: str) -> None:
    assert row[Col.STATUS] == "failed", row
    assert reason in row[Col.ERROR], row[Col.ERROR]
    assert row[Col.WARNINGS] is not None and row[Col.STRUCTURE_SHA256] is None


# ------------------------------------------------------------- accepted today, must fail with a reason


def test_poscar_with_a_nan_coordinate(tmp_path: Path) -> None:
    path = tmp_path / "POSCAR"
    path.write_text(POSCAR_HEAD + "1 1\nDirect\nnan 0 0\n0.5 0.5 0.5\n")
    assert_failed(only_row(path), "NaN coordinate on line 9")


def test_cif_with_a_negative_occupancy(tmp_path: Path) -> None:
    path = tmp_path / "neg.cif"
    path.write_text(cif("Li1 Li 0 0 0 -0.5\nF1 F 0.5 0.5 0.5 1\n"))
    assert_failed(only_row(path), "negative occupancy -0.5 on site Li1")


def test_cif_with_a_negative_cell_length(tmp_path: Path) -> None:
    path = tmp_path / "neg_cell.cif"
    path.write_text(cif(cell=CELL.replace("_cell_length_a 4.0", "_cell_length_a -4.0")))
    assert_failed(only_row(path), "cell length a is negative")


def test_single_site_occupancy_above_one(tmp_path: Path) -> None:
    path = tmp_path / "over.cif"
    path.write_text(cif("Li1 Li 0 0 0 1.2\nF1 F 0.5 0.5 0.5 1\n"))
    assert_failed(only_row(path), "occupancy 1.2 on site Li1 is above 1")


# ------------------------------------------------------------- no row at all today


def test_broken_symlink_found_in_a_folder_and_named_directly(tmp_path: Path) -> None:
    (tmp_path / "good.cif").write_text(cif())
    (tmp_path / "gone.cif").symlink_to(tmp_path / "deleted.cif")
    rows = rows_by_id([tmp_path])
    assert rows["good.cif"][Col.STATUS] == "ok"
    assert_failed(rows["gone.cif"], "broken symbolic link")
    assert_failed(only_row(tmp_path / "gone.cif"), "does not exist")


def test_folder_named_like_a_structure_file(tmp_path: Path) -> None:
    (tmp_path / "x.cif").mkdir()
    (tmp_path / "full.cif").mkdir()
    (tmp_path / "full.cif" / "inner.cif").write_text(cif())
    rows = rows_by_id([tmp_path])
    assert set(rows) == {"x.cif", "full.cif/inner.cif"}  # a folder with structures in it is just a folder
    assert_failed(rows["x.cif"], "a folder, not a structure file")
    assert rows["full.cif/inner.cif"][Col.STATUS] == "ok"


def test_unreadable_subfolder_becomes_a_failed_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod 000 does not stop root (the test container), so the refusal is simulated where the source
    # lists folders; test_unreadable_subfolder_really_chmod_000 does it for real as a normal user
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "hidden.cif").write_text(cif())
    (tmp_path / "good.cif").write_text(cif())
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == tmp_path / "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    rows = rows_by_id([tmp_path])
    assert set(rows) == {"good.cif", "locked"}
    assert_failed(rows["locked"], "cannot list the folder: permission denied")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads a chmod 000 folder anyway")
def test_unreadable_subfolder_really_chmod_000(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "hidden.cif").write_text(cif())
    locked.chmod(0)
    try:
        rows = rows_by_id([tmp_path])
    finally:
        locked.chmod(0o755)
    assert_failed(rows["locked"], "permission denied")


def test_multi_block_cif_keeps_one_row_per_block_with_stable_ids(tmp_path: Path) -> None:
    good = cif(name="a") + cif(LIF_SITES.replace("Li", "Na"), name="b") + cif(name="c")
    broken = cif(name="a") + cif("Na1 Na 0 0 0 1\nF1 F 0.5 0.5\n", name="b") + cif(name="c")
    (tmp_path / "good.cif").write_text(good)
    (tmp_path / "broken.cif").write_text(broken)
    fine = rows_by_id([tmp_path / "good.cif"])
    rows = rows_by_id([tmp_path / "broken.cif"])
    assert [key.split("#")[1] for key in rows] == ["0", "1", "2"]
    assert rows["broken.cif#0"][Col.STATUS] == rows["broken.cif#2"][Col.STATUS] == "ok"
    assert_failed(rows["broken.cif#1"], "last row is incomplete")
    assert "data_b" in rows["broken.cif#1"][Col.ERROR]
    # the good blocks are the same structures, under the same numbers, as in the unbroken file
    for index in (0, 2):
        assert (
            rows[f"broken.cif#{index}"][Col.STRUCTURE_SHA256]
            == fine[f"good.cif#{index}"][Col.STRUCTURE_SHA256]
        )


def test_blocks_with_the_same_name_are_not_merged(tmp_path: Path) -> None:
    path = tmp_path / "twice.cif"
    path.write_text(cif(name="same") + cif(LIF_SITES.replace("Li", "Na"), name="same"))
    rows = rows_by_id([path])
    assert sorted(row[Col.CHEMICAL_FORMULA_REDUCED] for row in rows.values()) == ["FLi", "FNa"]


# ------------------------------------------------------------- ids unique by construction


def test_vasp_layout_gives_unique_ids(tmp_path: Path, rocksalt_lif: Structure) -> None:
    for folder in ("calc1", "calc2"):
        (tmp_path / folder).mkdir()
        Poscar(rocksalt_lif).write_file(tmp_path / folder / "POSCAR")
    named = [tmp_path / "calc1" / "POSCAR", tmp_path / "calc2" / "POSCAR"]
    assert set(rows_by_id(named)) == {"calc1/POSCAR", "calc2/POSCAR"}
    assert set(rows_by_id([tmp_path / "calc1", tmp_path / "calc2"])) == {"calc1/POSCAR", "calc2/POSCAR"}
    assert set(rows_by_id([tmp_path])) == {"calc1/POSCAR", "calc2/POSCAR"}
    # deterministic, and relative paths as typed give the same ids
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert set(rows_by_id([Path("calc1/POSCAR"), Path("calc2/POSCAR")])) == {
            "calc1/POSCAR",
            "calc2/POSCAR",
        }
    finally:
        os.chdir(cwd)


def test_a_unique_name_keeps_its_short_id(tmp_path: Path, rocksalt_lif: Structure) -> None:
    for folder in ("a/run", "b/run"):
        (tmp_path / folder).mkdir(parents=True)
        Poscar(rocksalt_lif).write_file(tmp_path / folder / "POSCAR")
    (tmp_path / "a" / "other.cif").write_text(cif())
    ids = set(
        rows_by_id([tmp_path / "a" / "run" / "POSCAR", tmp_path / "b" / "run" / "POSCAR", tmp_path / "a"])
    )
    assert ids == {"a/run/POSCAR", "b/run/POSCAR", "other.cif"}


def test_the_same_file_named_twice_gives_one_row(tmp_path: Path) -> None:
    (tmp_path / "a.cif").write_text(cif())
    assert list(rows_by_id([tmp_path / "a.cif", tmp_path, tmp_path / "a.cif"])) == ["a.cif"]


def test_a_file_named_like_another_files_block(tmp_path: Path) -> None:
    (tmp_path / "a.cif").write_text(cif(name="one") + cif(name="two"))
    (tmp_path / "a.cif#1").write_text(POSCAR_HEAD + "1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n")
    rows = rows_by_id([tmp_path / "a.cif", tmp_path / "a.cif#1"])  # asserts unique ids
    assert len(rows) == 3


def test_missing_path_is_listed_before_anything_is_read(tmp_path: Path) -> None:
    (tmp_path / "a.cif").write_text(cif())
    with pytest.raises(InputPathError, match=r"nope\.cif, .*gone") as raised:
        discover_files([tmp_path / "a.cif", tmp_path / "nope.cif", tmp_path / "gone"])
    assert isinstance(raised.value, ScreeningError) and isinstance(raised.value, FileNotFoundError)


# ------------------------------------------------------------- reasons a scientist understands


@pytest.mark.parametrize(
    ("name", "content", "reason", "not_this"),
    [
        (
            "truncated.cif",
            cif().split("loop_\n_atom_site_label")[0] + "loop_\n",
            "the loop_ on line 9 has no data names (truncated file?)",
            "modulo",
        ),
        (
            "cut.cif",
            cif()[: cif().index("F1 F 0.5") + 9],
            "last row is incomplete (truncated file?)",
            "modulo",
        ),
        (
            "POSCAR",
            POSCAR_HEAD + "1 1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n",
            "line 6 names 2 species (Li F) but line 7 gives 3 atom counts",
            "IndexError",
        ),
        (
            "CONTCAR",
            POSCAR_HEAD + "4 4\nDirect\n0 0 0\n0.5 0.5 0.5\n",
            "expected 8 atom positions",
            "IndexError",
        ),
        (
            "nocell.extxyz",
            "2\nProperties=species:S:1:pos:R:3\nLi 0 0 0\nF 2 0 0\n",
            "no periodic 3D cell",
            "LinAlg",
        ),
        ("nocell.xyz", "2\nmolecule\nLi 0 0 0\nF 2 0 0\n", "no periodic 3D cell", "LinAlg"),
        ("other.json", json.dumps({"energy": 1.0, "formula": "LiF"}), "not a pymatgen Structure", "KeyError"),
        ("broken.json", '{"lattice": ', "unparsable JSON", "Error:"),
        ("notes.cif", "just some notes\n", "before any data_ header", "Error"),
        ("meta.cif", "data_global\n_journal_name_full 'Some journal'\n", "no atom sites", "KeyError"),
    ],
)
def test_reasons_are_readable(tmp_path: Path, name: str, content: str, reason: str, not_this: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    row = only_row(path)
    assert_failed(row, reason)
    assert not_this not in row[Col.ERROR]


def test_json_list_gives_one_row_per_document(tmp_path: Path, rocksalt_lif: Structure) -> None:
    path = tmp_path / "many.json"
    path.write_text(json.dumps([rocksalt_lif.as_dict(), {"not": "a structure"}, rocksalt_lif.as_dict()]))
    rows = rows_by_id([path])
    assert [rows[f"many.json#{i}"][Col.STATUS] for i in range(3)] == ["ok", "failed", "ok"]
    assert "document 1 is not a pymatgen Structure" in rows["many.json#1"][Col.ERROR]


def test_named_file_of_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    assert_failed(only_row(path), "not a known structure format")


def test_hidden_files_in_folders_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.cif").write_text(cif())
    (tmp_path / "._a.cif").write_bytes(b"\x00\x05\x16\x07 mac resource fork")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "a-checkpoint.cif").write_text(cif())
    assert set(rows_by_id([tmp_path])) == {"a.cif"}


def test_symlinked_folder_loop_terminates(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.cif").write_text(cif())
    (tmp_path / "sub" / "back").symlink_to(tmp_path, target_is_directory=True)
    assert set(rows_by_id([tmp_path])) == {"sub/a.cif"}


def test_vasp4_poscar_takes_its_elements_from_the_comment_or_says_it_has_none(tmp_path: Path) -> None:
    body = "1.0\n4.0 0 0\n0 4.0 0\n0 0 4.0\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"
    (tmp_path / "named").mkdir()
    (tmp_path / "named" / "POSCAR").write_text("Li F\n" + body)
    assert only_row(tmp_path / "named" / "POSCAR")[Col.CHEMICAL_FORMULA_REDUCED] == "FLi"
    (tmp_path / "anonymous").mkdir()
    (tmp_path / "anonymous" / "POSCAR").write_text("relaxed run 3\n" + body)  # pymatgen: silently H and He
    assert_failed(only_row(tmp_path / "anonymous" / "POSCAR"), "no line of element symbols")


def test_cif_coordinates_that_are_not_numbers(tmp_path: Path) -> None:
    path = tmp_path / "frac.cif"
    path.write_text(cif("Li1 Li 0 0 0 1\nF1 F 1/2 1/2 1/2 1\n"))  # pymatgen: "could not convert string"
    assert_failed(only_row(path), "coordinate '1/2' of site F1 (line 17) is not a number")
