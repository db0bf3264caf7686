"""Why a structure text cannot be read, said in words and with line numbers.

pymatgen answers "integer modulo by zero" for a truncated CIF loop, drops negative occupancies and calls
the species of a VASP 4 POSCAR H, He, ...; these checks run first, so that a failed row says what a
scientist can fix. A small CIF tokenizer splits a file into its data blocks (one row each) and finds
broken loops, missing cell parameters and impossible numbers; a POSCAR checker walks the fixed line
layout. Neither builds a structure: :mod:`screening.sources.files` does that with pymatgen.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from screening.structures import OCCUPANCY_TOLERANCE

_NUMBER = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:\(\d+\))?")
_SPECIAL = {"nan": math.nan, "+nan": math.nan, "-nan": math.nan, "inf": math.inf, "+inf": math.inf}
_SPECIAL |= {"-inf": -math.inf, "infinity": math.inf, "-infinity": -math.inf}


def _number(text: str) -> float | None:
    """A number as written in CIF or POSCAR (``0.5``, ``1.234(5)``, ``nan``), or None."""
    match = _NUMBER.fullmatch(text.strip())
    if match:
        return float(match.group(1))
    return _SPECIAL.get(text.strip().lower())


# CIF: a small tokenizer, only to split blocks and to say in words what is wrong with a broken file.

_CIF_TOKEN = re.compile(r"""'.*?'(?=\s|$)|".*?"(?=\s|$)|\S+""")


@dataclass
class _CifToken:
    text: str
    line: int
    quoted: bool


@dataclass
class CifBlock:
    name: str
    line: int  # 1-based line of the data_ header
    items: dict[str, _CifToken] = field(default_factory=dict)
    loops: dict[str, list[_CifToken]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class _CifLoop:
    line: int
    names: list[str] = field(default_factory=list)
    values: list[_CifToken] = field(default_factory=list)


def _cif_tokens(text: str, problems: list[str]) -> Iterator[_CifToken]:
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith(";"):  # a text field, up to the next line starting with ';'
            start = index
            index += 1
            while index < len(lines) and not lines[index].startswith(";"):
                index += 1
            if index == len(lines):
                problems.append(
                    f"the text field opened on line {start + 1} is never closed (truncated file?)"
                )
            yield _CifToken("\n".join([line[1:], *lines[start + 1 : index]]), start + 1, True)
            index += 1
            continue
        for match in _CIF_TOKEN.finditer(line):
            token = match.group(0)
            if token.startswith("#"):
                break
            quoted = len(token) >= 2 and token[0] in "'\"" and token[-1] == token[0]
            yield _CifToken(token[1:-1] if quoted else token, index + 1, quoted)
        index += 1


def _normalise_tag(tag: str) -> str:
    return tag.lower().replace(".", "_")


def _names(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _close_statement(block: CifBlock, pending: _CifToken | None, loop: _CifLoop | None) -> None:
    """Record a finished loop's columns in ``block``, or what is wrong with it or with a lone data name."""
    if pending is not None:
        block.problems.append(f"unparsable CIF: data name {pending.text} on line {pending.line} has no value")
    if loop is None:
        return
    names, values = loop.names, loop.values
    if not names:
        block.problems.append(
            f"unparsable CIF: the loop_ on line {loop.line} has no data names (truncated file?)"
        )
    elif not values:
        block.problems.append(
            f"unparsable CIF: the loop_ on line {loop.line} ({_names(names)}) has no values (truncated file?)"
        )
    elif len(values) % len(names):
        block.problems.append(
            f"unparsable CIF: the loop_ on line {loop.line} has {len(values)} values for {len(names)} columns "
            f"({_names(names)}), so its last row is incomplete (truncated file?)"
        )
    else:
        for column, name in enumerate(names):
            block.loops[name] = values[column :: len(names)]


def scan_cif(text: str) -> list[CifBlock]:
    """The data blocks of a CIF, each with its items, loop columns and syntax problems."""
    syntax: list[str] = []
    tokens = list(_cif_tokens(text, syntax))
    blocks: list[CifBlock] = []
    pending: _CifToken | None = None  # a data name waiting for its value
    loop: _CifLoop | None = None
    for token in tokens:
        word = token.text.lower()
        bare = not token.quoted
        if bare and word.startswith("data_"):
            if blocks:
                _close_statement(blocks[-1], pending, loop)
            pending, loop = None, None
            blocks.append(CifBlock(token.text[5:], token.line))
            continue
        if not blocks:
            blocks.append(CifBlock("", token.line))
            blocks[-1].problems.append(
                f"unparsable CIF: {token.text[:40]!r} on line {token.line} comes before any data_ header"
            )
        block = blocks[-1]
        if bare and (word in ("loop_", "global_", "stop_") or word.startswith("save_")):
            _close_statement(block, pending, loop)
            pending, loop = None, (_CifLoop(token.line) if word == "loop_" else None)
        elif bare and token.text.startswith("_"):
            if loop is not None and not loop.values:
                loop.names.append(_normalise_tag(token.text))
            else:
                _close_statement(block, pending, loop)
                pending, loop = _CifToken(_normalise_tag(token.text), token.line, False), None
        elif pending is not None:
            block.items[pending.text] = token
            pending = None
        elif loop is not None and loop.names:
            loop.values.append(token)
        elif loop is None:
            block.problems.append(
                f"unparsable CIF: value {token.text[:40]!r} on line {token.line} belongs to no data name"
            )
        # else: values of a loop_ without data names, reported when the loop closes
    if not blocks:
        return [CifBlock("", 1, problems=syntax or ["unparsable CIF: no data_ block (not a CIF file?)"])]
    _close_statement(blocks[-1], pending, loop)
    blocks[-1].problems += syntax
    return blocks


def cif_block_problems(block: CifBlock) -> list[str]:
    """What makes a block unusable although pymatgen would read it (or fail with an unhelpful message)."""
    problems = []
    for axis in "abc":
        token = block.items.get(f"_cell_length_{axis}")
        if token is None:
            problems.append(f"cell length {axis} is missing (no _cell_length_{axis})")
            continue
        value = _number(token.text)
        if value is None:
            problems.append(f"cell length {axis} is not a number ({token.text!r} on line {token.line})")
        elif not math.isfinite(value):
            problems.append(f"cell length {axis} is {token.text} (line {token.line})")
        elif value < 0:
            problems.append(f"cell length {axis} is negative ({token.text} on line {token.line})")
        elif value == 0:
            problems.append(f"cell length {axis} is zero (line {token.line})")
    for angle in ("alpha", "beta", "gamma"):
        token = block.items.get(f"_cell_angle_{angle}")
        value = None if token is None else _number(token.text)
        if token is not None and token.text not in ("?", ".") and not (value is not None and 0 < value < 180):
            problems.append(
                f"cell angle {angle} {token.text!r} (line {token.line}) is not between 0 and 180 degrees"
            )
    columns = block.loops
    if not any(
        f"_atom_site_{axis}_x" in where for axis in ("fract", "cartn") for where in (columns, block.items)
    ):
        problems.append(
            "no atom sites (no _atom_site_fract_x data): a block of metadata only, or a truncated file"
        )
    labels = columns.get("_atom_site_label") or columns.get("_atom_site_type_symbol") or []
    for name in ("_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z"):
        for index, token in enumerate(columns.get(name, [])):
            label = labels[index].text if index < len(labels) else f"number {index + 1}"
            value = _number(token.text)
            if value is None and token.text not in ("?", "."):
                problems.append(
                    f"coordinate {token.text!r} of site {label} (line {token.line}) is not a number"
                )
            elif value is not None and not math.isfinite(value):
                problems.append(f"NaN coordinate on site {label} (line {token.line})")
    for index, token in enumerate(columns.get("_atom_site_occupancy", [])):
        label = labels[index].text if index < len(labels) else f"number {index + 1}"
        value = _number(token.text)
        if token.text in ("?", "."):
            continue
        if value is None or not math.isfinite(value):
            problems.append(f"occupancy {token.text!r} on site {label} (line {token.line}) is not a number")
        elif value < 0:
            problems.append(f"negative occupancy {token.text} on site {label}")
        elif value > 1 + OCCUPANCY_TOLERANCE:
            problems.append(f"occupancy {token.text} on site {label} is above 1")
    return problems


def poscar_problems(text: str) -> list[str]:
    """Line-by-line reasons a POSCAR/CONTCAR cannot be read (empty: it looks well formed)."""
    lines = text.splitlines()

    def numbers(index: int, at_least: int, what: str) -> list[float] | str:
        if index >= len(lines):
            return f"the file ends after line {len(lines)}, before {what} (truncated file?)"
        words = lines[index].split()
        values = [_number(word) for word in words[:at_least]]
        if len(values) < at_least or any(v is None for v in values):
            return f"line {index + 1} should hold {what}, found {lines[index].strip()!r}"
        for value in values:
            if not math.isfinite(value):
                kind = "lattice vector component" if 2 <= index <= 4 else "coordinate"
                return f"{'NaN' if math.isnan(value) else 'infinite'} {kind} on line {index + 1}"
        return values

    scale = numbers(1, 1, "the scale factor")
    if isinstance(scale, str):
        return [scale]
    if scale[0] == 0:
        return ["the scale factor on line 2 is zero"]
    for index in (2, 3, 4):
        vector = numbers(index, 3, f"lattice vector {index - 1} (three numbers)")
        if isinstance(vector, str):
            return [vector]
    if len(lines) < 7:
        return ["the file ends after the lattice vectors (no species counts; truncated file?)"]
    names: list[str] = []
    count_line = 5
    first = lines[5].split()
    if first and not first[0].isdigit():
        names, count_line = first, 6  # VASP 5: a line of species names before the counts
    words = lines[count_line].split() if count_line < len(lines) else []
    counts: list[int] = []
    for word in words:
        if not word.isdigit():
            break
        counts.append(int(word))
    if not counts:
        return [
            f"line {count_line + 1} should hold the number of atoms of each species, found {' '.join(words)!r}"
        ]
    if names and len(counts) != len(names):
        return [
            f"line {count_line} names {len(names)} species ({' '.join(names)}) but line {count_line + 1} "
            f"gives {len(counts)} atom counts ({' '.join(map(str, counts))})"
        ]
    if sum(counts) == 0:
        return [f"line {count_line + 1} gives no atoms"]
    mode_line = count_line + 1
    if mode_line < len(lines) and lines[mode_line].strip()[:1].lower() == "s":
        mode_line += 1  # selective dynamics
    if mode_line >= len(lines):
        return ["the file ends before the Direct/Cartesian line (truncated file?)"]
    n_atoms = sum(counts)
    for k in range(n_atoms):
        index = mode_line + 1 + k
        if index >= len(lines) or not lines[index].strip():
            return [
                f"expected {n_atoms} atom positions (counts {' '.join(map(str, counts))} on line "
                f"{count_line + 1}) after line {mode_line + 1}, found {k}"
            ]
        position = numbers(index, 3, f"the position of atom {k + 1} (three numbers)")
        if isinstance(position, str):
            return [position]
    return []
