"""Property: for any tree of good and bad inputs, every input file (every CIF block) gives exactly one row,
ok or failed, and the ids are unique, also where the same file name repeats in different folders."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screening.schema import Col
from screening.sources.files import iter_file_rows

CELL = (
    "_cell_length_a 4.0\n_cell_length_b 4.0\n_cell_length_c 4.0\n_cell_angle_alpha 90\n_cell_angle_beta 90\n"
    "_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'P 1'\nloop_\n_atom_site_label\n"
    "_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n_atom_site_occupancy\n"
)
GOOD_BLOCK = "data_{}\n" + CELL + "Li1 Li 0 0 0 1\nF1 F 0.5 0.5 0.5 1\n"
BAD_BLOCK = "data_{}\n" + CELL + "Li1 Li 0 0 0 -0.5\nF1 F 0.5 0.5 0.5 1\n"
TRUNCATED_BLOCK = "data_{}\n" + CELL + "Li1 Li 0 0 0 1\nF1 F 0.5\n"
GOOD_POSCAR = "LiF\n1.0\n4 0 0\n0 4 0\n0 0 4\nLi F\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"
BAD_POSCAR = GOOD_POSCAR.replace("1 1\n", "1 1 1\n")
GOOD_JSON = (
    '{"@module": "pymatgen.core.structure", "@class": "Structure", "lattice": {"matrix": [[4, 0, 0], [0, 4, 0], '
    '[0, 0, 4]]}, "sites": [{"species": [{"element": "Li", "occu": 1}], "abc": [0, 0, 0]}, '
    '{"species": [{"element": "F", "occu": 1}], "abc": [0.5, 0.5, 0.5]}]}'
)

#: kind -> (file names it may take, whether it is good, blocks)
KINDS: dict[str, tuple[tuple[str, ...], bool | None, int]] = {
    "good_cif": (("a.cif", "b.cif"), True, 1),
    "bad_cif": (("a.cif", "c.cif"), False, 1),
    "multi_cif": (("a.cif", "m.cif"), None, 3),  # good, truncated, good
    "good_poscar": (("POSCAR", "CONTCAR"), True, 1),
    "bad_poscar": (("POSCAR", "x.vasp"), False, 1),
    "good_json": (("s.json",), True, 1),
    "bad_json": (("s.json", "t.json"), False, 1),
    "broken_link": (("a.cif", "l.cif"), False, 1),
    "empty_folder": (("d.cif",), False, 1),
    "notes": (("notes.txt",), None, 0),  # not a structure file: ignored inside folders
}
FOLDERS = ("", "calc1", "calc2", "calc1/sub", "calc2/sub")


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[tuple[str, str, str]], str | None, bool]:
    entries = draw(
        st.lists(
            st.tuples(st.sampled_from(FOLDERS), st.sampled_from(sorted(KINDS))).flatmap(
                lambda fk: st.tuples(st.just(fk[0]), st.just(fk[1]), st.sampled_from(KINDS[fk[1]][0]))
            ),
            min_size=1,
            max_size=12,
            unique_by=lambda entry: (entry[0], entry[2]),
        )
    )
    locked = draw(st.sampled_from([None, "calc1", "calc2/sub"]))
    name_top_level = draw(st.booleans())
    return entries, locked, name_top_level


def build(root: Path, entries: list[tuple[str, str, str]]) -> None:
    for folder, kind, name in entries:
        path = root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "good_cif":
            path.write_text(GOOD_BLOCK.format("g"))
        elif kind == "bad_cif":
            path.write_text(BAD_BLOCK.format("b"))
        elif kind == "multi_cif":
            path.write_text(
                GOOD_BLOCK.format("one") + TRUNCATED_BLOCK.format("two") + GOOD_BLOCK.format("three")
            )
        elif kind == "good_poscar":
            path.write_text(GOOD_POSCAR)
        elif kind == "bad_poscar":
            path.write_text(BAD_POSCAR)
        elif kind == "good_json":
            path.write_text(GOOD_JSON)
        elif kind == "bad_json":
            path.write_text('{"energy": -3.2}')
        elif kind == "broken_link":
            path.symlink_to(root / "missing-target.cif")
        elif kind == "empty_folder":
            path.mkdir()
        else:
            path.write_text("notes\n")


def under(folder: str, locked: str | None) -> bool:
    return locked is not None and (folder == locked or folder.startswith(locked + "/"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_every_input_file_and_block_gives_one_row_with_a_unique_id(tree) -> None:
    entries, locked, name_top_level = tree
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        root.mkdir()
        build(root, entries)
        folders = {folder for folder, _, _ in entries}
        locked = locked if locked in folders else None

        # what should come back: source path -> (rows, good?)
        expected: dict[str, tuple[int, bool | None]] = {}
        for folder, kind, name in entries:
            _, good, blocks = KINDS[kind]
            if under(folder, locked) or (kind == "notes" and not (name_top_level and folder == "")):
                continue
            expected[str(root / folder / name)] = (max(blocks, 1), good if kind != "notes" else False)
        if locked is not None:
            expected[str(root / locked)] = (1, False)
        paths = sorted(root / child for child in os.listdir(root)) if name_top_level else [root]
        for named in paths:  # a named folder that holds no input says so
            inside = [path for path in expected if path.startswith(str(named) + os.sep)]
            if named.is_dir() and not named.is_symlink() and not inside and str(named) not in expected:
                expected[str(named)] = (1, False)

        real_scandir = os.scandir

        def scandir(path):
            if locked is not None and Path(path) == root / locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        with mock.patch.object(os, "scandir", scandir):
            rows = list(iter_file_rows(paths))

    ids = [row[Col.ID] for row in rows]
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
    assert not any("~" in i for i in ids), ids  # unique from the paths alone, not by the last-resort suffix
    per_path = Counter(row[Col.SOURCE_PATH] for row in rows)
    assert dict(per_path) == {path: count for path, (count, _) in expected.items()}
    for row in rows:
        count, good = expected[row[Col.SOURCE_PATH]]
        if count == 3:  # the multi-block CIF: block #1 is the truncated one
            good = not row[Col.ID].endswith("#1")
        assert (row[Col.STATUS] == "ok") is good, (row[Col.ID], row[Col.ERROR])
        assert isinstance(row[Col.WARNINGS], list)
        assert (row[Col.STRUCTURE_SHA256] is not None) is (row[Col.STATUS] == "ok")
