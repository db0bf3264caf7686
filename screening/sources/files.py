"""Structures from the user's own files: CIF, POSCAR/CONTCAR, extxyz and pymatgen JSON.

Every file gives one row per structure it holds. A file that cannot be read, or a structure that fails
validation (overfull sites, unknown elements, atoms too close, empty cell), gives a failed row whose
``error`` says what is wrong; the other files go on.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from pymatgen.core import Structure
from pymatgen.io.cif import CifParser
from pymatgen.io.vasp import Poscar

from screening.errors import ScreeningError
from screening.sources.validation import validate_structure
from screening.structures import OCCUPANCY_TOLERANCE, failed_row, structure_to_row

SOURCE = "files"

_CIF_SUFFIXES = {".cif", ".mcif"}
_XYZ_SUFFIXES = {".extxyz", ".xyz"}
_JSON_SUFFIXES = {".json"}
_POSCAR_SUFFIXES = {".vasp", ".poscar"}
_POSCAR_NAMES = re.compile(r"^(POSCAR|CONTCAR)", re.IGNORECASE)


class StructureFileError(ScreeningError, ValueError):
    """A structure file that cannot be turned into a valid structure."""


def is_structure_file(path: Path) -> bool:
    """Whether ``path`` looks like a file this source reads (by suffix or VASP file name)."""
    suffix = path.suffix.lower()
    return suffix in _CIF_SUFFIXES | _XYZ_SUFFIXES | _JSON_SUFFIXES | _POSCAR_SUFFIXES or bool(
        _POSCAR_NAMES.match(path.name)
    )


def discover_files(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """Expand directories (recursively) into structure files.

    Returns:
        Sorted ``(file, root)`` pairs; ``root`` is the directory the file was found under (or its parent for
        a file given directly), used to build ids from relative paths.
    """
    found: list[tuple[Path, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += [(f, path) for f in sorted(path.rglob("*")) if f.is_file() and is_structure_file(f)]
        elif path.exists():
            found.append((path, path.parent))
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
    return found


def _parse_cif(path: Path) -> list[Structure]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser(path, occupancy_tolerance=1.0 + OCCUPANCY_TOLERANCE)
            return parser.parse_structures(primitive=False)
        except Exception as exc:  # pymatgen raises many types here; all mean "unreadable"
            messages = [str(w.message) for w in caught]
            overfull = [m for m in messages if "sum to > 1" in m]
            if overfull:
                sums = re.findall(r"\[([^\]]*)\]", overfull[0])
                raise StructureFileError(
                    f"site occupancies sum above 1 beyond the tolerance {OCCUPANCY_TOLERANCE:g}"
                    + (f" (sums: {sums[0]})" if sums else "")
                ) from exc
            unknown = [m for m in messages if "not a valid Element" in m]
            detail = "; ".join(unknown or messages[-2:])
            raise StructureFileError(f"unparsable CIF: {exc}" + (f" ({detail})" if detail else "")) from exc


def _parse_json(path: Path) -> list[Structure]:
    data = json.loads(path.read_text())
    documents = data if isinstance(data, list) else [data]
    if any(isinstance(doc, dict) and doc.get("sites") == [] for doc in documents):
        raise StructureFileError("empty structure: the document has no sites")
    return [Structure.from_dict(doc) for doc in documents]


def _parse_extxyz(path: Path) -> list[Structure]:
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = read(path, index=":", format="extxyz")
    return [AseAtomsAdaptor.get_structure(atoms) for atoms in frames]


def read_structures_from_file(path: str | os.PathLike) -> list[Structure]:
    """Parse every structure in one file (CIFs with partial occupancies stay disordered).

    Raises:
        StructureFileError: the file cannot be read as a crystal structure, with the reason.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in _CIF_SUFFIXES:
            structures = _parse_cif(path)
        elif suffix in _JSON_SUFFIXES:
            structures = _parse_json(path)
        elif suffix in _XYZ_SUFFIXES:
            structures = _parse_extxyz(path)
        else:
            structures = [Poscar.from_file(path, check_for_potcar=False).structure]
    except StructureFileError:
        raise
    except Exception as exc:
        raise StructureFileError(
            f"unparsable {path.suffix or path.name} file: {type(exc).__name__}: {exc}"
        ) from exc
    if not structures:
        raise StructureFileError("the file holds no structure")
    return structures


def _structure_id(path: Path, root: Path, index: int, count: int) -> str:
    relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    return relative if count == 1 else f"{relative}#{index}"


def rows_from_file(path: Path, root: Path) -> list[dict[str, Any]]:
    """All rows for one file: one per structure, failed rows for what cannot be used."""
    source_path = str(path)
    try:
        structures = read_structures_from_file(path)
    except StructureFileError as exc:
        return [failed_row(_structure_id(path, root, 0, 1), SOURCE, str(exc), source_path=source_path)]
    rows = []
    for index, structure in enumerate(structures):
        structure_id = _structure_id(path, root, index, len(structures))
        problems = validate_structure(structure)
        if problems:
            rows.append(failed_row(structure_id, SOURCE, "; ".join(problems), source_path=source_path))
        else:
            rows.append(structure_to_row(structure, structure_id, SOURCE, source_path=source_path))
    return rows


def iter_file_rows(
    paths: Sequence[str | os.PathLike], *, workers: int = 1, progress: bool = False
) -> Iterator[dict[str, Any]]:
    """Rows for every structure file under ``paths`` (files or directories, searched recursively).

    Args:
        paths: files and/or directories.
        workers: parse files in this many processes (1 = in this process).
        progress: show a progress bar over files.
    """
    from tqdm.auto import tqdm

    files = discover_files(paths)
    bar = tqdm(total=len(files), desc="reading structure files", unit="file", disable=not progress)
    with bar:
        if workers <= 1 or len(files) < 2:
            for path, root in files:
                yield from rows_from_file(path, root)
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for rows in pool.map(rows_from_file, *zip(*files, strict=True), chunksize=8):
                yield from rows
                bar.update()
