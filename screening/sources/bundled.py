"""The bundled default data set as a source: published battery materials (see
:mod:`screening.bundled_records` for the record format), built, validated and turned into table rows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from screening.bond_valence import bond_valence_deviations
from screening.bundled_records import BundledEntry, load_records, parse_entry
from screening.structures import failed_row, structure_to_row
from screening.validation import validate_structure

SOURCE = "bundled"


def build_and_validate(entry: BundledEntry) -> Structure:
    """The entry's structure, or ``ValueError`` listing every problem: those of
    :func:`~screening.validation.validate_structure` against the published formula, and every
    site whose bond-valence sum misses its oxidation state
    (:func:`~screening.bond_valence.bond_valence_deviations`)."""
    structure = entry.structure()
    problems = validate_structure(structure, expected_formula=entry.formula)
    if not problems:
        problems = [f"bond-valence sum off: {d}" for d in bond_valence_deviations(structure)]
    if problems:
        raise ValueError(f"{entry.id}: " + "; ".join(problems))
    return structure


def iter_bundled_rows(path: Path | None = None) -> Iterator[dict[str, Any]]:
    """Rows of the structures table for every bundled entry; an entry that cannot be parsed, built or
    validated becomes a failed row carrying the reason."""
    for index, record in enumerate(load_records(path)):
        fallback_id = f"bundled-entry-{index}"
        entry_id = str(record.get("id", fallback_id)) if isinstance(record, Mapping) else fallback_id
        try:
            entry = parse_entry(record)
            structure = build_and_validate(entry)
        except (ValueError, KeyError, TypeError) as error:
            yield failed_row(entry_id, SOURCE, str(error))
            continue
        yield structure_to_row(structure, entry.id, SOURCE, **entry.row_labels())
