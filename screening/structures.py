"""Exact conversion between pymatgen ``Structure`` objects and rows of the structures table.

A row follows OPTIMADE: ``lattice_vectors`` and ``cartesian_site_positions`` in angstrom, one entry of
``species_at_sites`` per site naming an entry of ``species``, and each species entry listing its chemical
symbols with concentrations. Disorder is kept as it is: a mixed site has several symbols, a partially
occupied site has a ``vacancy`` symbol carrying ``1 - sum(concentrations)``. Oxidation states, when the
structure has them, travel in the ``oxidation_states`` list of each species entry.

Every row carries a ``warnings`` list (empty when there is nothing to note) and, when it holds a structure,
the ``structure_sha256`` of its physical content (:func:`content_sha256`), so that the same crystal read
from two sources or twice from one can be recognised.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pymatgen.core import Composition, Element, Lattice, Species, Structure

from screening.errors import InputError
from screening.schema import STATUS_FAILED, STATUS_OK, VACANCY, Col

#: Number of hash buckets the structures table is partitioned into.
DEFAULT_N_BUCKETS = 16

#: Occupancies may exceed 1 by this much (rounding in published CIFs) before a site counts as overfull,
#: and fall short of 1 by this much before it counts as partially occupied.
OCCUPANCY_TOLERANCE = 1e-3

_Specie = Element | Species


def bucket_of(structure_id: str, n_buckets: int = DEFAULT_N_BUCKETS) -> int:
    """Stable hash bucket of an id (crc32, the same on every machine and Python process)."""
    return zlib.crc32(structure_id.encode()) % n_buckets


def is_partially_occupied(total_occupancy: np.ndarray | float) -> np.ndarray:
    """Whether each site's summed occupancy is below one by more than the rounding of published CIFs
    (a mixed site refined to Y 0.075 + Zr 0.924 is full)."""
    return np.asarray(total_occupancy, dtype=float) < 1.0 - OCCUPANCY_TOLERANCE


def _oxidation_state(specie: _Specie) -> float | None:
    return float(specie.oxi_state) if isinstance(specie, Species) and specie.oxi_state is not None else None


def _species_key(occupancy: Mapping[_Specie, float]) -> tuple:
    return tuple((sp.symbol, _oxidation_state(sp), float(occ)) for sp, occ in occupancy.items())


def _species_name(key: tuple, taken: set[str]) -> str:
    """A short readable name for a species entry (``Li``, ``Li+``, ``Li:0.56``, ``S2-:0.5,Cl-:0.5``)."""

    def label(symbol: str, oxi: float | None) -> str:
        if oxi is None:
            return symbol
        charge = "" if abs(oxi) == 1 else f"{abs(oxi):g}"
        return f"{symbol}{charge}{'+' if oxi >= 0 else '-'}"

    if len(key) == 1 and key[0][2] == 1.0:
        base = label(key[0][0], key[0][1])
    else:
        base = ",".join(f"{label(sym, oxi)}:{occ:.6g}" for sym, oxi, occ in key)
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}#{n}"
    return name


def reduced_formula(composition: Composition) -> str:
    """OPTIMADE-style reduced formula: elements in alphabetical order, counts divided by their common
    factor when they are integers (``La3Li7O12Zr2``), kept fractional otherwise (``Li6.4La3...``)."""
    amounts = composition.get_el_amt_dict()
    values = list(amounts.values())
    if all(abs(v - round(v)) < 1e-8 for v in values):
        divisor = math.gcd(*(round(v) for v in values)) or 1
    else:
        divisor = 1
    parts = []
    for symbol in sorted(amounts):
        count = amounts[symbol] / divisor
        text = (
            ""
            if abs(count - 1) < 1e-8
            else (f"{round(count)}" if abs(count - round(count)) < 1e-8 else f"{count:.4g}")
        )
        parts.append(f"{symbol}{text}")
    return "".join(parts)


def structure_to_row(
    structure: Structure,
    structure_id: str,
    source: str,
    *,
    warnings: Sequence[str] = (),
    **labels: Any,
) -> dict[str, Any]:
    """Describe ``structure`` as one row of the structures table.

    Args:
        structure: an ordered or disordered pymatgen structure (partial occupancies kept as they are).
        structure_id: unique id of the row.
        source: where it came from (``mp``, ``files``, ``bundled``).
        warnings: readable notes about the structure (``check_structure(...).warnings``).
        **labels: extra columns (``_mp_band_gap=...``, ``source_path=...``), keyed by column name.

    Returns:
        A dict with every structures-table column that applies.
    """
    species_entries: list[dict[str, Any]] = []
    name_of_key: dict[tuple, str] = {}
    species_at_sites: list[str] = []
    disordered = False
    for site in structure:
        occupancy = site.species
        key = _species_key(occupancy)
        if key not in name_of_key:
            name = _species_name(key, set(name_of_key.values()))
            name_of_key[key] = name
            symbols = [sym for sym, _, _ in key]
            concentrations = [occ for _, _, occ in key]
            oxidation_states = [oxi for _, oxi, _ in key]
            vacancy = 1.0 - math.fsum(concentrations)
            if vacancy > 1e-12:
                symbols.append(VACANCY)
                concentrations.append(vacancy)
                oxidation_states.append(None)
            species_entries.append(
                {
                    "name": name,
                    "chemical_symbols": symbols,
                    "concentration": concentrations,
                    "oxidation_states": oxidation_states,
                }
            )
        disordered = disordered or not occupancy.is_element or len(key) > 1 or key[0][2] != 1.0
        species_at_sites.append(name_of_key[key])

    composition = structure.composition
    elements = sorted({el.symbol for el in composition.elements})
    row: dict[str, Any] = {
        Col.ID: structure_id,
        Col.SOURCE: source,
        Col.STATUS: STATUS_OK,
        Col.ERROR: None,
        Col.WARNINGS: list(warnings),
        Col.STRUCTURE_SHA256: content_sha256(structure),
        Col.LATTICE_VECTORS: structure.lattice.matrix.tolist(),
        Col.CARTESIAN_SITE_POSITIONS: structure.cart_coords.tolist(),
        Col.SPECIES_AT_SITES: species_at_sites,
        Col.SPECIES: species_entries,
        Col.NSITES: len(structure),
        Col.ELEMENTS: elements,
        Col.NELEMENTS: len(elements),
        Col.CHEMICAL_FORMULA_REDUCED: reduced_formula(composition),
        Col.CHEMICAL_SYSTEM: "-".join(elements),
        Col.IS_ORDERED: not disordered,
        Col.STRUCTURE_FEATURES: ["disorder"] if disordered else [],
        Col.BUCKET: bucket_of(structure_id),
    }
    row.update({str(k): v for k, v in labels.items()})
    return row


def _is_mixed(entry: Mapping[str, Any]) -> bool:
    return len(entry["chemical_symbols"]) > 1 or entry["concentration"][0] != 1.0


def row_to_structure(row: Mapping[str, Any]) -> Structure:
    """Rebuild the pymatgen structure of a structures-table row (the exact inverse of
    :func:`structure_to_row`: lattice and positions to floating-point round-off, species, occupancies and
    oxidation states as they were)."""
    if row.get(Col.STATUS, STATUS_OK) != STATUS_OK:
        raise InputError(f"row {row.get(Col.ID)!r} is a failed row: {row.get(Col.ERROR)}")
    occupancy_by_name: dict[str, dict[_Specie, float]] = {}
    for entry in row[Col.SPECIES]:
        oxidation_states = entry.get("oxidation_states")
        if oxidation_states is None:
            oxidation_states = [None] * len(entry["chemical_symbols"])
        occupancy: dict[_Specie, float] = {}
        for symbol, occ, oxi in zip(
            entry["chemical_symbols"], entry["concentration"], oxidation_states, strict=True
        ):
            if symbol == VACANCY:
                continue
            specie = (
                Element(symbol)
                if oxi is None or (isinstance(oxi, float) and math.isnan(oxi))
                else Species(symbol, oxi)
            )
            occupancy[specie] = float(occ)
        occupancy_by_name[entry["name"]] = occupancy
    lattice = Lattice(np.array([list(v) for v in row[Col.LATTICE_VECTORS]], dtype=float))
    positions = np.array([list(p) for p in row[Col.CARTESIAN_SITE_POSITIONS]], dtype=float).reshape(-1, 3)
    species = [occupancy_by_name[name] for name in row[Col.SPECIES_AT_SITES]]
    return Structure(lattice, species, positions, coords_are_cartesian=True)


def failed_row(
    structure_id: str, source: str, error: str, *, warnings: Sequence[str] = (), **labels: Any
) -> dict[str, Any]:
    """A structures-table row for input that could not be turned into a valid structure.

    Args:
        structure_id: unique id of the row.
        source: where it came from.
        error: why the input cannot be used, written for a scientist.
        warnings: lesser problems found alongside (kept so the user sees everything at once).
        **labels: extra columns, keyed by column name.
    """
    row: dict[str, Any] = {
        Col.ID: structure_id,
        Col.SOURCE: source,
        Col.STATUS: STATUS_FAILED,
        Col.ERROR: error,
        Col.WARNINGS: list(warnings),
        Col.STRUCTURE_SHA256: None,
        Col.BUCKET: bucket_of(structure_id),
    }
    row.update({str(k): v for k, v in labels.items()})
    return row


#: Resolution of :func:`content_sha256`: lattice vectors to 1e-6 angstrom, fractional coordinates to 1e-8
#: (1e-7 angstrom in a 10 angstrom cell), occupancies to 1e-8.
SHA256_LATTICE_RESOLUTION_A = 1e-6
SHA256_FRACTIONAL_RESOLUTION = 1e-8
SHA256_OCCUPANCY_RESOLUTION = 1e-8

_FRACTIONAL_STEPS = round(1 / SHA256_FRACTIONAL_RESOLUTION)


def content_sha256(row_or_structure: Mapping[str, Any] | Structure) -> str:
    """SHA-256 (hex) of the physical content of a structure or of an ok structures-table row.

    What counts: the lattice vectors, and per site the position inside the cell (fractional coordinates
    wrapped into [0, 1)) with the concentration of each element, both rounded to the resolutions above.
    What does not: the order of the sites, periodic images (a site at x = 1.02 is the one at 0.02),
    oxidation states, vacancy entries, ids and labels. A row and the structure rebuilt from it therefore
    hash the same, and so does the same crystal read from a CIF and from its pymatgen JSON. (A value
    within floating-point round-off of a rounding boundary could still fall either way; that takes a
    coordinate within about 1e-16 of one, so it does not happen in practice.)

    Raises:
        ValueError: for a failed row (it holds no structure).
    """
    structure = (
        row_or_structure if isinstance(row_or_structure, Structure) else row_to_structure(row_or_structure)
    )
    lattice = np.rint(structure.lattice.matrix / SHA256_LATTICE_RESOLUTION_A).astype(np.int64)
    steps = np.rint(np.asarray(structure.frac_coords, dtype=float) * _FRACTIONAL_STEPS).astype(np.int64)
    steps = np.mod(steps, _FRACTIONAL_STEPS)
    sites = []
    for site, position in zip(structure, steps.tolist(), strict=True):
        by_element: dict[str, float] = {}
        for specie, amount in site.species.items():
            symbol = getattr(specie, "symbol", str(specie))
            by_element[symbol] = by_element.get(symbol, 0.0) + float(amount)
        occupancy = sorted(
            (symbol, round(amount / SHA256_OCCUPANCY_RESOLUTION)) for symbol, amount in by_element.items()
        )
        sites.append([position, occupancy])
    sites.sort()
    payload = {"version": 1, "lattice": lattice.tolist(), "sites": sites}
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()
