"""Structures from the user's own files: CIF, POSCAR/CONTCAR, extxyz and pymatgen JSON.

Every input gives rows, failed ones included, so nothing the user named disappears:

* each structure file gives one row per structure it holds (a CIF one per ``data_`` block, an extxyz one
  per frame, a JSON list one per document), numbered ``<id>#0``, ``<id>#1``, ... by position in the file,
  so the ids of the good blocks do not change when another block is broken;
* a file or block that cannot be read gives a failed row whose ``error`` says what is wrong, in words
  (``"negative occupancy -0.5 on site Li1"``, ``"NaN coordinate on line 9"``);
* so do a broken symbolic link, a folder named on the command line or named like a structure file that
  holds none, a folder that cannot be listed, and anything that is not a regular file;
* a structure that reads but fails :func:`~screening.validation.check_structure` gives a failed
  row; one that passes is kept as published (disorder and all), with the checker's ``warnings``.

Ids are the paths relative to the folder named on the command line (a file named directly: its file
name), lengthened by parent folders where two inputs would otherwise share one: ``calc1/POSCAR`` and
``calc2/POSCAR`` rather than two ``POSCAR``. A path that does not exist at all is a typo, not data: it
raises :class:`InputPathError` before anything is read. Hidden files and folders (names starting with a
dot) are skipped when searching a folder.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymatgen.core import Composition, Element, Structure
from pymatgen.io.cif import CifParser
from pymatgen.io.vasp import Poscar

from screening.errors import MissingInputError, ScreeningError
from screening.schema import Col
from screening.sources._text_problems import CifBlock, cif_block_problems, poscar_problems, scan_cif
from screening.structures import OCCUPANCY_TOLERANCE, bucket_of, failed_row
from screening.validation import checked_row

SOURCE = "files"

_CIF_SUFFIXES = {".cif", ".mcif"}
_XYZ_SUFFIXES = {".extxyz", ".xyz"}
_JSON_SUFFIXES = {".json"}
_POSCAR_SUFFIXES = {".vasp", ".poscar"}
_SUFFIXES = _CIF_SUFFIXES | _XYZ_SUFFIXES | _JSON_SUFFIXES | _POSCAR_SUFFIXES
_POSCAR_NAMES = re.compile(r"^(POSCAR|CONTCAR)", re.IGNORECASE)


class StructureFileError(ScreeningError, ValueError):
    """A structure file that cannot be turned into a valid structure."""


class InputPathError(MissingInputError):
    """A path named as input that does not exist."""


def is_structure_file(path: Path) -> bool:
    """Whether ``path`` looks like a file this source reads (by suffix or VASP file name)."""
    return path.suffix.lower() in _SUFFIXES or bool(_POSCAR_NAMES.match(path.name))


# ------------------------------------------------------------------------------------------ discovery


@dataclass(frozen=True)
class InputPath:
    """One input of the files source.

    Attributes:
        path: the file (or the link, folder or other entry that cannot be read), as found.
        structure_id: the row id (structures in a multi-structure file add ``#<index>``).
        problem: why it cannot be read at all (a broken link, an unreadable folder), else None.
    """

    path: Path
    structure_id: str
    problem: str | None = None


@dataclass
class _Found:
    path: Path
    parts: tuple[str, ...]  # of the absolute path, without the anchor
    length: int  # trailing parts that make the id
    problem: str | None


def _os_reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


def _entry_problem(path: Path) -> str | None:
    """Why a path that is neither a folder nor a regular file cannot be read."""
    if path.is_symlink():
        return f"broken symbolic link: its target {os.readlink(path)} does not exist"
    return "not a regular file (a device, socket or pipe)"


def _walk(directory: Path, visited: set[str]) -> Iterator[tuple[Path, str | None]]:
    """Structure files under ``directory`` (sorted, recursively, following links to folders once), and
    the entries that look like structure files or may hold some but cannot be read, with the reason."""
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        yield directory, f"cannot list the folder: {_os_reason(error)}"
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            is_dir, is_file = entry.is_dir(), entry.is_file()
        except OSError as error:
            yield path, f"cannot read: {_os_reason(error)}"
            continue
        if is_dir:
            real = os.path.realpath(path)
            if real in visited:
                continue  # a link back to a folder already searched
            visited.add(real)
            inside = list(_walk(path, visited))
            if not inside and path.suffix.lower() in _SUFFIXES:
                yield path, "a folder, not a structure file (and it holds no structure files)"
            yield from inside
        elif is_structure_file(path):
            yield path, None if is_file else _entry_problem(path)


def _unique_ids(found: list[_Found]) -> list[str]:
    """Ids from the trailing path parts, each lengthened until no two inputs share one."""
    while True:
        ids = ["/".join(item.parts[-item.length :]) for item in found]
        holders: dict[str, list[int]] = defaultdict(list)
        for index, structure_id in enumerate(ids):
            holders[structure_id].append(index)
        grew = False
        for indices in holders.values():
            if len(indices) > 1:
                for index in indices:
                    if found[index].length < len(found[index].parts):
                        found[index].length += 1
                        grew = True
        if not grew:
            return ids


def discover_files(paths: Iterable[str | os.PathLike]) -> list[InputPath]:
    """Every input under ``paths``: the files named, and the structure files found in the folders named
    (searched recursively), each with a unique id; entries that cannot be read carry the reason.

    Raises:
        InputPathError: a named path does not exist (all such paths are listed).
    """
    found: list[_Found] = []
    seen: set[str] = set()
    missing: list[str] = []

    def add(path: Path, length: int, problem: str | None) -> None:
        absolute = os.path.abspath(path)
        if absolute in seen:
            return  # named twice, or named and also found in a named folder
        seen.add(absolute)
        parts = Path(absolute).parts[1:] or (absolute,)
        found.append(_Found(path, parts, max(1, min(length, len(parts))), problem))

    for raw in paths:
        path = Path(raw)
        if not os.path.lexists(path):
            missing.append(str(path))
        elif path.is_dir():
            inside = list(_walk(path, {os.path.realpath(path)}))
            for item, problem in inside:
                relative = item.relative_to(path).parts if item != path else ()
                add(item, len(relative) or 1, problem)
            if not inside:
                add(path, 1, "the folder holds no structure files")
        else:
            add(path, 1, None if path.is_file() else _entry_problem(path))
    if missing:
        raise InputPathError(f"no such file or directory: {', '.join(missing)}")
    ids = _unique_ids(found)
    return [
        InputPath(item.path, structure_id, item.problem)
        for item, structure_id in zip(found, ids, strict=True)
    ]


# ------------------------------------------------------------------------------------------ parsing


@dataclass
class ParsedStructure:
    """One structure of a file, or why it could not be read.

    Attributes:
        structure: the structure as published, or None.
        error: why there is no structure, or None.
        expected_formula: the formula the file states (CIF ``_chemical_formula_sum``), if any.
        warnings: notes from reading (a formula that cannot be read).
    """

    structure: Structure | None = None
    error: str | None = None
    expected_formula: str | None = None
    warnings: list[str] = field(default_factory=list)


def _pymatgen_cif_structure(text: str) -> Structure:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser.from_str(text, occupancy_tolerance=1.0 + OCCUPANCY_TOLERANCE)
            structures = parser.parse_structures(primitive=False, on_error="raise")
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
            reason = str(exc).replace("\n", " ")
            if isinstance(exc, KeyError):
                reason = f"missing data name {exc}"
            detail = "; ".join(unknown)
            raise StructureFileError(
                f"unparsable CIF: {reason}" + (f" ({detail})" if detail else "")
            ) from exc
    if len(structures) != 1:
        raise StructureFileError(f"unparsable CIF: the block gives {len(structures)} structures")
    return structures[0]


def _expected_formula(block: CifBlock) -> tuple[str | None, list[str]]:
    token = block.items.get("_chemical_formula_sum")
    if token is None or token.text in ("?", "."):
        return None, []
    try:
        Composition(token.text)
    except Exception:  # noqa: BLE001 - pymatgen's formula parser raises several types
        return None, [f"formula not compared: _chemical_formula_sum {token.text!r} cannot be read"]
    return token.text, []


def _cif_structures(text: str) -> list[ParsedStructure]:
    blocks = scan_cif(text)
    lines = text.splitlines(keepends=True)
    parsed = []
    for index, block in enumerate(blocks):
        name = f" (block data_{block.name})" if len(blocks) > 1 and block.name else ""
        problems = block.problems or cif_block_problems(block)
        if problems:
            parsed.append(ParsedStructure(error="; ".join(problems) + name))
            continue
        end = blocks[index + 1].line - 1 if index + 1 < len(blocks) else len(lines)
        formula, notes = _expected_formula(block)
        try:
            structure = _pymatgen_cif_structure("".join(lines[block.line - 1 : end]))
        except StructureFileError as error:
            parsed.append(ParsedStructure(error=f"{error}{name}", warnings=notes))
            continue
        parsed.append(ParsedStructure(structure, expected_formula=formula, warnings=notes))
    return parsed


def _vasp4_species(lines: list[str]) -> tuple[list[str] | None, str | None]:
    """For a POSCAR without a line of element symbols (VASP 4), the elements named by its comment line
    (the usual convention; pymatgen would silently call them H, He, ...), or why there are none.

    Returns:
        ``(None, None)`` for a VASP 5 file, ``(names, None)`` or ``(None, reason)`` for a VASP 4 one.
    """
    counts = lines[5].split()
    if not counts[0].isdigit():
        return None, None
    n_species = sum(1 for _ in itertools.takewhile(str.isdigit, counts))
    names = lines[0].split()[:n_species]
    if len(names) == n_species and all(Element.is_valid_symbol(name) for name in names):
        return names, None
    return None, (
        "line 6 gives atom counts but no line of element symbols above them (VASP 4 format), and the "
        f"comment on line 1 ({lines[0].strip()!r}) does not name {n_species} elements either; add a line "
        "of element symbols before the counts"
    )


def _poscar_structures(text: str) -> list[ParsedStructure]:
    problems = poscar_problems(text)
    if problems:
        return [ParsedStructure(error="unparsable POSCAR: " + "; ".join(problems))]
    names, missing = _vasp4_species(text.splitlines())
    if missing:
        return [ParsedStructure(error=f"unparsable POSCAR: {missing}")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structure = Poscar.from_str(text, default_names=names).structure
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types
            return [ParsedStructure(error=f"unparsable POSCAR: {type(exc).__name__}: {exc}")]
    return [ParsedStructure(structure)]


def _json_structures(text: str) -> list[ParsedStructure]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [ParsedStructure(error=f"unparsable JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")]
    documents = data if isinstance(data, list) else [data]
    if not documents:
        return [ParsedStructure(error="the JSON file holds an empty list, no structure")]
    parsed = []
    for index, doc in enumerate(documents):
        where = f"document {index}" if isinstance(data, list) else "the document"
        if not isinstance(doc, dict):
            parsed.append(ParsedStructure(error=f"{where} is a JSON {type(doc).__name__}, not a structure"))
            continue
        missing = [key for key in ("lattice", "sites") if key not in doc]
        if missing or doc.get("@class", "Structure") not in ("Structure", "IStructure"):
            keys = ", ".join(list(doc)[:8]) or "none"
            kind = f"a {doc['@class']}" if "@class" in doc else f"missing {' and '.join(map(repr, missing))}"
            parsed.append(
                ParsedStructure(error=f"{where} is not a pymatgen Structure ({kind}; its keys: {keys})")
            )
            continue
        if doc.get("sites") == []:
            parsed.append(ParsedStructure(error="empty structure: the document has no sites"))
            continue
        try:
            parsed.append(ParsedStructure(Structure.from_dict(doc)))
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types
            parsed.append(
                ParsedStructure(error=f"{where} cannot be read as a structure: {type(exc).__name__}: {exc}")
            )
    return parsed


def _extxyz_structures(text: str) -> list[ParsedStructure]:
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        frames = read(io.StringIO(text), index=":", format="extxyz")
    except Exception as exc:  # noqa: BLE001 - ase raises many types
        return [ParsedStructure(error=f"unparsable extxyz: {type(exc).__name__}: {exc}")]
    if not frames:
        return [ParsedStructure(error="the extxyz file holds no frame")]
    parsed = []
    for index, atoms in enumerate(frames):
        if len(atoms) == 0:
            parsed.append(ParsedStructure(error=f"frame {index} has no sites"))
        elif atoms.cell.rank < 3 or not all(atoms.pbc):
            parsed.append(
                ParsedStructure(
                    error=f'frame {index} has no periodic 3D cell (Lattice="..." and pbc="T T T" in its '
                    "comment line): a molecule, not a crystal"
                )
            )
        else:
            parsed.append(ParsedStructure(AseAtomsAdaptor.get_structure(atoms)))
    return parsed


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as error:
        raise StructureFileError(f"cannot read the file: {_os_reason(error)}") from error


def parse_structure_file(path: str | os.PathLike) -> list[ParsedStructure]:
    """Every structure of one file, each parsed or with the reason it cannot be (disorder kept).

    The format comes from the suffix (``.cif``/``.mcif``, ``.json``, ``.extxyz``/``.xyz``,
    ``.vasp``/``.poscar``); anything else is read as a POSCAR.

    Raises:
        StructureFileError: the file cannot be read at all.
    """
    path = Path(path)
    text = _read_text(path)
    suffix = path.suffix.lower()
    if suffix in _CIF_SUFFIXES:
        return _cif_structures(text)
    if suffix in _JSON_SUFFIXES:
        return _json_structures(text)
    if suffix in _XYZ_SUFFIXES:
        return _extxyz_structures(text)
    parsed = _poscar_structures(text)
    if parsed[0].error and suffix not in _POSCAR_SUFFIXES and not _POSCAR_NAMES.match(path.name):
        parsed[0].error = (
            f"not a known structure format ({', '.join(sorted(_SUFFIXES))}, POSCAR*, CONTCAR*); "
            f"read as a POSCAR: {parsed[0].error}"
        )
    return parsed


def read_structures_from_file(path: str | os.PathLike) -> list[Structure]:
    """Parse every structure in one file (CIFs with partial occupancies stay disordered).

    Raises:
        StructureFileError: the file, or one structure in it, cannot be read, with the reason.
    """
    structures = []
    for parsed in parse_structure_file(path):
        if parsed.structure is None:
            raise StructureFileError(parsed.error)
        structures.append(parsed.structure)
    return structures


# ------------------------------------------------------------------------------------------ rows


def rows_from_input(item: InputPath) -> list[dict[str, Any]]:
    """All rows for one input: one per structure it holds, failed rows for what cannot be used."""
    labels = {"source_path": str(item.path)}
    if item.problem is not None:
        return [failed_row(item.structure_id, SOURCE, item.problem, **labels)]
    try:
        parsed = parse_structure_file(item.path)
    except StructureFileError as exc:
        return [failed_row(item.structure_id, SOURCE, str(exc), **labels)]
    rows = []
    for index, entry in enumerate(parsed):
        structure_id = item.structure_id if len(parsed) == 1 else f"{item.structure_id}#{index}"
        if entry.structure is None:
            rows.append(
                failed_row(
                    structure_id, SOURCE, entry.error or "unreadable", warnings=entry.warnings, **labels
                )
            )
            continue
        rows.append(
            checked_row(
                entry.structure,
                structure_id,
                SOURCE,
                expected_formula=entry.expected_formula,
                warnings=entry.warnings,
                **labels,
            )
        )
    return rows


def unique_rows(rows: Iterable[dict[str, Any]], seen: set[str]) -> Iterator[dict[str, Any]]:
    """``rows`` with ids made unique against ``seen`` (updated). Ids are unique by construction except
    for a file literally named like another's block ("a.cif#1" next to a two-block "a.cif"); such a row
    gets a further suffix."""
    for row in rows:
        structure_id, n = row[Col.ID], 1
        while structure_id in seen:
            n += 1
            structure_id = f"{row[Col.ID]}~{n}"
        seen.add(structure_id)
        if structure_id != row[Col.ID]:
            row = {**row, Col.ID: structure_id, Col.BUCKET: bucket_of(structure_id)}
        yield row


def iter_file_rows(
    paths: Sequence[str | os.PathLike], *, workers: int = 1, progress: bool = False
) -> Iterator[dict[str, Any]]:
    """Rows for every input under ``paths`` (files or directories, searched recursively).

    Args:
        paths: files and/or directories.
        workers: parse files in this many processes (1 = in this process).
        progress: show a progress bar over files.

    Raises:
        InputPathError: a named path does not exist.
    """
    from tqdm.auto import tqdm

    inputs = discover_files(paths)
    seen: set[str] = set()

    def unique(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        return unique_rows(rows, seen)

    bar = tqdm(total=len(inputs), desc="reading structure files", unit="file", disable=not progress)
    with bar:
        if workers <= 1 or len(inputs) < 2:
            for item in inputs:
                yield from unique(rows_from_input(item))
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for rows in pool.map(rows_from_input, inputs, chunksize=8):
                yield from unique(rows)
                bar.update()
