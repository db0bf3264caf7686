"""Structures and hull reference entries from the Materials Project, through the real ``mp-api`` client.

The queries go through mp-api's route clients (``SummaryRester`` for ``/materials/summary/`` and
``ThermoRester`` for ``/materials/thermo/``), the same classes ``MPRester`` builds behind
``mpr.materials.summary`` and ``mpr.materials.thermo``; they are built directly here because only they
accept a request time-out. Documents are requested as plain dicts (``use_document_model=False``) so that
one malformed document becomes one failed row instead of failing the validation of a whole page.

* Key: the ``api_key`` argument, else ``MP_API_KEY``. Endpoint: the ``endpoint`` argument, else
  ``MP_API_ENDPOINT``, else the public API.
* A query always carries at least one filter: mp-api sends an unfiltered search to a bulk S3/Delta
  download instead of the REST API (:meth:`MPQuery.filters` refuses an empty query).
* Time-outs and retries are :class:`MPClientOptions` (connect 10 s, read 60 s, 3 retries, back-off 1 s
  doubling up to 30 s; see :mod:`screening.sources._mp_client`, which replaces mp-api's own retries):
  429, 5xx, time-outs and dropped connections are retried, with a warning on the ``screening.sources.mp``
  logger before each wait; anything else fails at once. A reply that is not the API's JSON (HTML,
  truncated, ``{"data": "oops"}``) is not retried. A final failure raises one line of
  :class:`MPSourceError` naming the route's URL, the attempts, the HTTP status, the reason and what to
  do; it never contains the API key.
* :func:`iter_mp_rows` fetches every page before it yields the first row, so a query that fails raises
  :class:`MPSourceError` without having yielded anything.
* The labels (``_mp_energy_above_hull``, ``_mp_formation_energy_per_atom``, ``_mp_energy_per_atom``...)
  are the summary's, i.e. on MP's default ``GGA_GGA+U_R2SCAN`` mixed hull: for materials MP computed
  with r2SCAN they are not on the GGA/GGA+U scale of the reference entries below.
* Reference entries are MP's ``GGA_GGA+U`` thermo entries: GGA and GGA+U calculations mixed with the
  MP2020 corrections already applied by MP (``entry.correction``, ``entry.energy_adjustments``), for
  every sub-system of the chemical systems asked for, which is what a convex hull needs.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pymatgen.core import Element, Structure

from screening.schema import REFERENCES_SCHEMA, Col, with_metadata
from screening.sources._mp_client import (
    MPClientOptions,
    MPSourceError,
    credentials,
    open_rester,
    route_url,
    with_retries,
)
from screening.structures import failed_row
from screening.validation import checked_row

if TYPE_CHECKING:
    from pymatgen.entries.computed_entries import ComputedStructureEntry

__all__ = [
    "MPClientOptions",
    "MPQuery",
    "MPSourceError",
    "doc_to_row",
    "fetch_reference_entries",
    "iter_mp_rows",
    "references_to_table",
    "sub_systems",
]

SOURCE = "mp"

#: MP's thermo type of the reference entries: GGA and GGA+U mixed with the MP2020 corrections.
REFERENCE_THERMO_TYPE = "GGA_GGA+U"

#: Documents per request. The MP API serves at most 1000, and mp-api pages by ``_skip += _limit``, so a
#: larger page would silently skip documents: page sizes are clamped to this.
DEFAULT_PAGE_SIZE = 1000
#: Chemical systems per thermo request (keeps the URL well below the server's length limit).
CHEMSYS_PER_REQUEST = 100
#: A chemical system of n elements has 2**n - 1 sub-systems; beyond this the hull query is refused.
MAX_ELEMENTS_PER_SYSTEM = 10

SUMMARY_ROUTE = "/materials/summary/"
THERMO_ROUTE = "/materials/thermo/"

#: Structures-table label column <- field of MP's summary document.
LABEL_FIELDS: dict[Col, str] = {
    Col.MP_ID: "material_id",
    Col.MP_ENERGY_ABOVE_HULL: "energy_above_hull",
    Col.MP_FORMATION_ENERGY_PER_ATOM: "formation_energy_per_atom",
    Col.MP_BAND_GAP: "band_gap",
    Col.MP_IS_STABLE: "is_stable",
    Col.MP_ENERGY_PER_ATOM: "energy_per_atom",
    Col.MP_UNCORRECTED_ENERGY_PER_ATOM: "uncorrected_energy_per_atom",
    Col.MP_THEORETICAL: "theoretical",
}
_BOOL_LABELS = {Col.MP_IS_STABLE, Col.MP_THEORETICAL}
SUMMARY_FIELDS = ["structure", *LABEL_FIELDS.values()]


def _check_symbols(symbols: Iterable[str], what: str, *, wildcard: bool = False) -> list[str]:
    checked = []
    for symbol in symbols:
        symbol = symbol.strip()
        if not (Element.is_valid_symbol(symbol) or (wildcard and symbol == "*")):
            raise ValueError(f"{what}: {symbol!r} is not a chemical element")
        checked.append(symbol)
    if not checked:
        raise ValueError(f"{what}: empty")
    return checked


def _normalise_chemsys(chemsys: str) -> str:
    """``"O-Li"`` -> ``"Li-O"`` (MP's sorted spelling); ``*`` stays a wildcard element."""
    return "-".join(sorted(_check_symbols(chemsys.split("-"), f"chemical system {chemsys!r}", wildcard=True)))


@dataclass(frozen=True)
class MPQuery:
    """A Materials Project summary search.

    Attributes:
        elements: the material contains all of these elements (and possibly others).
        exclude_elements: the material contains none of these.
        chemsys: one chemical system (``"Li-P-S"``, exactly these elements) or several; ``*`` is a wildcard.
        max_energy_above_hull_eV: at most this far above MP's convex hull, in eV/atom.
        max_nsites: at most this many sites in MP's cell.
        theoretical: only theoretical (True) or only ICSD-matched, experimentally known (False) materials.
        material_ids: only these materials (``mp-149``, ...).
        limit: at most this many materials (not a filter: it does not make a query specific).
    """

    elements: Sequence[str] | None = None
    exclude_elements: Sequence[str] | None = None
    chemsys: str | Sequence[str] | None = None
    max_energy_above_hull_eV: float | None = None
    max_nsites: int | None = None
    theoretical: bool | None = None
    material_ids: Sequence[str] | None = None
    limit: int | None = None

    def filters(self) -> dict[str, Any]:
        """The keyword arguments of ``SummaryRester.search`` for this query.

        Raises:
            ValueError: when the query has no filter (mp-api would download the whole database instead),
                or a filter is malformed (unknown element, negative hull distance, ...).
        """
        filters: dict[str, Any] = {}
        if self.elements is not None:
            filters["elements"] = _check_symbols(_as_list(self.elements), "elements")
        if self.exclude_elements is not None:
            filters["exclude_elements"] = _check_symbols(_as_list(self.exclude_elements), "exclude_elements")
        if self.chemsys is not None:
            systems = [_normalise_chemsys(c) for c in _as_list(self.chemsys)]
            if not systems:
                raise ValueError("chemsys: empty")
            filters["chemsys"] = systems if len(systems) > 1 else systems[0]
        if self.max_energy_above_hull_eV is not None:
            e_max_eV = float(self.max_energy_above_hull_eV)
            if not (math.isfinite(e_max_eV) and e_max_eV >= 0):
                raise ValueError(f"max_energy_above_hull_eV must be >= 0 eV/atom, got {e_max_eV}")
            filters["energy_above_hull"] = (0.0, e_max_eV)
        if self.max_nsites is not None:
            if int(self.max_nsites) < 1:
                raise ValueError(f"max_nsites must be >= 1, got {self.max_nsites}")
            filters["num_sites"] = (1, int(self.max_nsites))
        if self.theoretical is not None:
            filters["theoretical"] = bool(self.theoretical)
        if self.material_ids is not None:
            if not self.material_ids:
                raise ValueError("material_ids: empty")
            filters["material_ids"] = [str(m) for m in self.material_ids]
        if not filters:
            raise ValueError(
                "a Materials Project query needs at least one filter (elements, exclude_elements, chemsys, "
                "max_energy_above_hull_eV, max_nsites, theoretical or material_ids): without one mp-api "
                "downloads the whole database from its bulk store instead of querying the REST API"
            )
        if self.limit is not None and int(self.limit) < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        return filters


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


# --------------------------------------------------------------------------- structures


def _label(column: Col, value: Any) -> Any:
    if value is None:
        return None
    if column == Col.MP_ID:
        return str(value)
    if column in _BOOL_LABELS:
        if not isinstance(value, bool):
            raise ValueError(f"{LABEL_FIELDS[column]} should be true/false, got {value!r}")
        return value
    return float(value)


def doc_to_row(doc: dict[str, Any], position: int = 0) -> dict[str, Any]:
    """One structures-table row from one MP summary document (a failed row if it cannot be read).

    Args:
        doc: the document as the API returns it (``material_id``, ``structure`` as a pymatgen dict, labels).
        position: index of the document in the response, naming it when it has no ``material_id``.
    """
    material_id = str(doc.get("material_id") or f"mp-document-{position}-without-material-id")
    try:
        labels = {str(col): _label(col, doc.get(field)) for col, field in LABEL_FIELDS.items()}
        labels[Col.MP_ID] = material_id
    except (TypeError, ValueError) as exc:
        return failed_row(material_id, SOURCE, f"bad label in MP document: {exc}", **{Col.MP_ID: material_id})
    try:
        if not isinstance(doc.get("structure"), dict):
            raise ValueError("the document has no structure")
        structure = Structure.from_dict(doc["structure"])
        if len(structure) == 0:
            raise ValueError("the structure has no sites")
    except Exception as exc:  # pymatgen raises many kinds (KeyError, ValueError, TypeError...)
        reason = f"{type(exc).__name__}: {exc}"
        return failed_row(
            material_id, SOURCE, f"cannot parse MP structure of {material_id}: {reason}", **labels
        )
    return checked_row(structure, material_id, SOURCE, **labels)


def iter_mp_rows(
    query: MPQuery,
    *,
    api_key: str | None = None,
    endpoint: str | None = None,
    client_options: MPClientOptions | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Iterator[dict[str, Any]]:
    """Rows of the structures table for the materials matching ``query``.

    All pages are fetched (each whole search retried on a transient failure) before the first row is
    yielded, so a failing query raises without yielding partial results. A document whose structure
    cannot be parsed becomes a failed row; the others go on. A material returned twice is yielded once.

    Args:
        query: the search; it must have at least one filter.
        api_key: MP API key (default ``MP_API_KEY``).
        endpoint: API root URL (default ``MP_API_ENDPOINT``, else the public API).
        client_options: time-outs and retries (default ``MPClientOptions()``).
        page_size: documents per request (at most 1000).

    Yields:
        ``structure_to_row(structure, material_id, "mp", _mp_material_id=..., _mp_energy_above_hull=...)``
        rows, or ``failed_row`` rows.

    Raises:
        ValueError: the query has no filter or a malformed one.
        MPSourceError: no API key, or the search failed for good (including a malformed reply).
    """
    docs = _search(query, SUMMARY_FIELDS, api_key, endpoint, client_options, page_size)
    seen: set[str] = set()
    for position, doc in enumerate(docs[: query.limit] if query.limit else docs):
        row = doc_to_row(doc, position)
        if row[Col.ID] in seen:
            continue
        seen.add(row[Col.ID])
        yield row


def _search(
    query: MPQuery,
    fields: list[str],
    api_key: str | None,
    endpoint: str | None,
    client_options: MPClientOptions | None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> list[dict[str, Any]]:
    """Every summary document of ``query`` with ``fields`` (all pages, the whole search retried)."""
    from mp_api.client.routes.materials.summary import SummaryRester

    filters = query.filters()
    key, url = credentials(api_key, endpoint)
    page_size = min(int(page_size), DEFAULT_PAGE_SIZE)
    chunk_size = max(1, min(page_size, query.limit or page_size))
    num_chunks = math.ceil(query.limit / chunk_size) if query.limit else None
    options = client_options or MPClientOptions()
    with open_rester(SummaryRester, key, url, options=options) as rester:
        return with_retries(
            lambda: rester.search(**filters, fields=fields, chunk_size=chunk_size, num_chunks=num_chunks),
            url=route_url(url, SUMMARY_ROUTE),
            options=options,
            secret=key,
        )


def mp_material_ids(
    query: MPQuery,
    *,
    api_key: str | None = None,
    endpoint: str | None = None,
    client_options: MPClientOptions | None = None,
) -> list[tuple[str, str]]:
    """``(material_id, chemical system)`` of the materials matching ``query``, in the API's order,
    each once: the cheap first pass of a chunked ingest (no structures are downloaded)."""
    docs = _search(query, ["material_id", "chemsys"], api_key, endpoint, client_options)
    found: dict[str, str] = {}
    for doc in docs[: query.limit] if query.limit else docs:
        material_id = doc.get("material_id")
        if material_id is not None:
            found.setdefault(str(material_id), str(doc.get("chemsys") or ""))
    return list(found.items())


# --------------------------------------------------------------------------- reference entries


def sub_systems(chemical_system: str) -> list[str]:
    """Every non-empty sub-system of a chemical system, sorted (``"Li-O"`` -> ``Li``, ``Li-O``, ``O``)."""
    elements = sorted(set(_check_symbols(chemical_system.split("-"), f"chemical system {chemical_system!r}")))
    if len(elements) > MAX_ELEMENTS_PER_SYSTEM:
        raise ValueError(
            f"chemical system {chemical_system!r} has {len(elements)} elements; hull references are fetched "
            f"for at most {MAX_ELEMENTS_PER_SYSTEM}"
        )
    return sorted(
        "-".join(subset)
        for n in range(1, len(elements) + 1)
        for subset in itertools.combinations(elements, n)
    )


def _entry_from_dict(entry_dict: dict[str, Any]) -> ComputedStructureEntry:
    """A plain pymatgen entry from one entry of a thermo document, as the API sends it.

    MP serialises entries with emmet, which may send ``energy_adjustments`` as a JSON string and
    ``entry_id`` as an ``EntryID`` object (``{"identifier", "suffix", "separator"}``); mp-api's
    ``get_entries`` accepts both through emmet's adapter but then leaves emmet objects in the entry, which do
    not serialise. Here both are decoded to what ``ComputedStructureEntry.as_dict`` would hold.
    """
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    entry_dict = dict(entry_dict)
    if isinstance(entry_dict.get("energy_adjustments"), str | bytes):
        entry_dict["energy_adjustments"] = json.loads(entry_dict["energy_adjustments"])
    if isinstance(entry_dict.get("entry_id"), dict):
        from emmet.core.types.pymatgen_types.computed_entries_adapter import EntryID

        entry_dict["entry_id"] = str(EntryID.model_validate(entry_dict["entry_id"]))
    return ComputedStructureEntry.from_dict(entry_dict)


def _entries_of(docs: Iterable[dict[str, Any]]) -> list[ComputedStructureEntry]:
    """Every entry of the thermo documents. A malformed entry is an error, not a skipped entry: a hull
    missing one of its phases would silently misplace every structure of that chemical system."""
    entries = []
    for doc in docs:
        if not isinstance(doc.get("entries"), dict):
            raise MPSourceError(
                f"malformed reply from {THERMO_ROUTE}: the thermo document of {doc.get('material_id')} has "
                f"{'no entries' if doc.get('entries') is None else 'entries that are not an object'}; "
                "check that MP_API_ENDPOINT is the Materials Project API, else try again later"
            )
        for run_type, entry_dict in doc["entries"].items():
            try:
                entries.append(_entry_from_dict(entry_dict))
            except Exception as exc:  # pymatgen/monty raise many kinds on malformed dicts
                raise MPSourceError(
                    f"malformed {run_type} reference entry of {doc.get('material_id')} from {THERMO_ROUTE}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
    return entries


def fetch_reference_entries(
    chemical_systems: Iterable[str],
    *,
    api_key: str | None = None,
    endpoint: str | None = None,
    client_options: MPClientOptions | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> list[ComputedStructureEntry]:
    """MP's GGA/GGA+U (MP2020-corrected) entries of every sub-system of the given chemical systems.

    This is what ``MPRester.get_entries_in_chemsys(..., additional_criteria={"thermo_types":
    ["GGA_GGA+U"]})`` asks for (``/materials/thermo/`` with ``chemsys`` and ``thermo_types``), for many
    systems at once and with retries. Corrections are kept exactly as MP returns them.

    Args:
        chemical_systems: systems such as ``"Co-Li-O"`` (any order of elements, duplicates allowed).
        api_key, endpoint, client_options, page_size: as in :func:`iter_mp_rows`.

    Returns:
        The entries, each once, sorted by ``entry_id``; energies in eV per the entry's composition.

    Raises:
        ValueError: a chemical system names an unknown element or has too many elements.
        MPSourceError: no API key, or a request failed for good.
    """
    from mp_api.client.routes.materials.thermo import ThermoRester

    systems = sorted({s for system in chemical_systems for s in sub_systems(system)})
    if not systems:
        return []
    key, url = credentials(api_key, endpoint)
    options = client_options or MPClientOptions()
    entries: dict[str, ComputedStructureEntry] = {}
    with open_rester(ThermoRester, key, url, options=options) as rester:
        for start in range(0, len(systems), CHEMSYS_PER_REQUEST):
            batch = systems[start : start + CHEMSYS_PER_REQUEST]
            docs = with_retries(
                lambda batch=batch: rester.search(
                    chemsys=batch,
                    thermo_types=[REFERENCE_THERMO_TYPE],
                    fields=["material_id", "thermo_type", "entries"],
                    chunk_size=max(1, min(int(page_size), DEFAULT_PAGE_SIZE)),
                ),
                url=route_url(url, THERMO_ROUTE),
                options=options,
                secret=key,
            )
            for entry in _entries_of(docs):
                entries[entry.entry_id or f"{entry.composition.reduced_formula}-{len(entries)}"] = entry
    return [entries[k] for k in sorted(entries)]


def _compatibility(entry: ComputedStructureEntry) -> str | None:
    """Names of the schemes that made the entry's energy adjustments (None: no adjustment)."""
    names = set()
    for adjustment in entry.energy_adjustments:
        scheme = getattr(adjustment, "cls", None)  # a dict, or the decoded Compatibility object
        name = scheme.get("@class") if isinstance(scheme, dict) else type(scheme).__name__
        if scheme is not None and name:
            names.add(name)
    return "+".join(sorted(names)) if names else None


def references_to_table(entries: Iterable[ComputedStructureEntry]) -> pa.Table:
    """The references table (``REFERENCES_SCHEMA``) of computed entries.

    Columns: ``energy_eV`` is the corrected total energy (pymatgen's ``entry.energy``, eV for the entry's
    composition), ``correction_eV`` the total correction MP applied (``entry.correction``; the raw DFT
    energy is their difference), ``run_type`` the calculation's GGA or GGA+U, ``compatibility`` the
    scheme(s) that made the corrections as recorded in the entry (e.g. ``MaterialsProject2020Compatibility``;
    null when the entry needs none, as for elements), and ``entry_json`` the entry's ``as_dict()`` JSON,
    from which ``ComputedStructureEntry.from_dict`` rebuilds it exactly.
    """
    from monty.json import MontyEncoder

    rows = []
    for entry in entries:
        rows.append(
            {
                "entry_id": str(entry.entry_id),
                "composition": entry.composition.formula,
                "chemical_system": entry.composition.chemical_system,
                "energy_eV": float(entry.energy),
                "correction_eV": float(entry.correction),
                "run_type": (entry.parameters or {}).get("run_type"),
                "compatibility": _compatibility(entry),
                "entry_json": json.dumps(entry.as_dict(), cls=MontyEncoder),
            }
        )
    schema = with_metadata(REFERENCES_SCHEMA, "references", thermo_type=REFERENCE_THERMO_TYPE)
    return pa.Table.from_pylist(rows, schema=schema)
