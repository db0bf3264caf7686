"""The `files` source: every supported format, disorder kept, and each kind of bad input as a failed row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ase.io import write as ase_write
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter
from pymatgen.io.vasp import Poscar

from screening.schema import Col
from screening.sources.files import discover_files, iter_file_rows
from screening.structures import row_to_structure

CIF_HEADER = """data_test
_cell_length_a 4.0
_cell_length_b 4.0
_cell_length_c 4.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
_symmetry_Int_Tables_number 1
loop_
_symmetry_equiv_pos_as_xyz
 'x, y, z'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
"""


def write_cif(path: Path, atoms: str) -> Path:
    path.write_text(CIF_HEADER + atoms)
    return path


@pytest.fixture
def structure_dir(tmp_path: Path, rocksalt_lif: Structure, disordered_rocksalt: Structure) -> Path:
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    CifWriter(disordered_rocksalt).write_file(tmp_path / "disordered.cif")
    Poscar(rocksalt_lif).write_file(tmp_path / "nested" / "POSCAR")
    Poscar(rocksalt_lif.copy().scale_lattice(rocksalt_lif.volume * 1.1)).write_file(
        tmp_path / "nested" / "CONTCAR"
    )
    ase_write(tmp_path / "nested" / "deeper" / "frames.extxyz",
              [AseAtomsAdaptor.get_atoms(rocksalt_lif)] * 2, format="extxyz")  # fmt: skip
    (tmp_path / "lif.json").write_text(json.dumps(rocksalt_lif.as_dict()))
    (tmp_path / "notes.txt").write_text("not a structure")
    return tmp_path


def by_id(rows: list[dict]) -> dict[str, dict]:
    return {row[Col.ID]: row for row in rows}


def test_reads_every_format_recursively(structure_dir: Path, disordered_rocksalt: Structure) -> None:
    rows = by_id(iter_file_rows([structure_dir]))
    assert set(rows) == {
        "disordered.cif", "nested/POSCAR", "nested/CONTCAR", "nested/deeper/frames.extxyz#0",
        "nested/deeper/frames.extxyz#1", "lif.json",
    }  # fmt: skip
    assert all(row[Col.STATUS] == "ok" for row in rows.values()), [r[Col.ERROR] for r in rows.values()]
    cif = rows["disordered.cif"]
    assert cif[Col.IS_ORDERED] is False
    parsed = row_to_structure(cif)
    assert parsed.composition.reduced_composition.almost_equals(
        disordered_rocksalt.composition.reduced_composition
    )
    assert rows["nested/POSCAR"][Col.CHEMICAL_FORMULA_REDUCED] == "FLi"
    assert rows["lif.json"][Col.SOURCE_PATH].endswith("lif.json")


def test_parallel_parsing_gives_the_same_rows(structure_dir: Path) -> None:
    serial = by_id(iter_file_rows([structure_dir], workers=1))
    parallel = by_id(iter_file_rows([structure_dir], workers=2))
    assert serial.keys() == parallel.keys()
    for key, row in serial.items():
        assert row[Col.CARTESIAN_SITE_POSITIONS] == parallel[key][Col.CARTESIAN_SITE_POSITIONS]


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        discover_files([tmp_path / "nope"])


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("garbage.cif", "this is not a CIF at all\n", "unparsable"),
        (
            "overfull.cif",
            CIF_HEADER + "Li1 Li 0 0 0 0.8\nNa1 Na 0 0 0 0.5\nF1 F 0.5 0.5 0.5 1\n",
            "sum above 1",
        ),
        ("unknown.cif", CIF_HEADER + "Xx1 Xx 0 0 0 1\nF1 F 0.5 0.5 0.5 1\n", "unknown element"),
        ("close.cif", CIF_HEADER + "Li1 Li 0 0 0 1\nF1 F 0.05 0 0 1\n", "too close"),
        ("POSCAR_broken", "LiF\n1.0\n4 0 0\n0 4 0\n", "unparsable"),
        ("empty.json", json.dumps(Structure(Lattice.cubic(4.0), [], []).as_dict()), "empty structure"),
        (
            "empty.extxyz",
            '0\nLattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3 pbc="T T T"\n',
            "no sites",
        ),
    ],
)
def test_bad_input_becomes_a_failed_row_with_its_reason(
    tmp_path: Path, rocksalt_lif: Structure, name: str, content: str, reason: str
) -> None:
    (tmp_path / name).write_text(content)
    (tmp_path / "good.json").write_text(json.dumps(rocksalt_lif.as_dict()))
    rows = by_id(iter_file_rows([tmp_path]))
    assert rows["good.json"][Col.STATUS] == "ok"  # the good file is never lost
    bad = rows[name]
    assert bad[Col.STATUS] == "failed"
    assert reason in bad[Col.ERROR].lower(), bad[Col.ERROR]


def test_slightly_overfull_published_occupancies_are_tolerated(tmp_path: Path) -> None:
    write_cif(tmp_path / "rounded.cif", "Li1 Li 0 0 0 0.5005\nNa1 Na 0 0 0 0.5\nF1 F 0.5 0.5 0.5 1\n")
    (row,) = iter_file_rows([tmp_path / "rounded.cif"])
    assert row[Col.STATUS] == "ok", row[Col.ERROR]
