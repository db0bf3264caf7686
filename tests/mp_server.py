"""A local stand-in for the Materials Project API, for testing the real mp-api client on 127.0.0.1.

It answers the routes the client uses, the way the MP API does:

* ``GET /heartbeat`` -> ``{"db_version", "version", "access_controlled_batch_ids"}``;
* ``GET /materials/summary/`` and ``GET /materials/thermo/`` -> ``{"data": [...], "meta": {"total_doc"}}``,
  honouring ``_limit``/``_skip`` (and ``_page``/``_per_page``), ``_fields`` and the filters the client sends;
  a query parameter it does not know is answered 400, as a strict server would, so a test notices when
  the client sends something unexpected.

Switches for failure tests: ``heartbeat_status`` (answer ``/heartbeat`` with it), ``fail_first`` (the
first n data requests get ``fail_status``, 429 by default), ``always_status`` (every data request gets that
status), ``retry_after_s`` (sent as ``Retry-After`` with those failures), ``delay_s`` and
``heartbeat_delay_s`` (answer late, for time-outs; a server that hangs is a large delay, cut short when
the server stops, so a test never waits for it), ``raw_replies`` (path -> body bytes answered with 200 as
is, for malformed replies), ``echo_key_in_errors`` (a careless server that repeats the key it got in its
401 message). Every request is recorded (path, query parameters, API key header).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from pymatgen.core import Lattice, Structure
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedStructureEntry

TEST_API_KEY = "0123456789abcdef0123456789abcdef"  # mp-api insists on 32 characters

SUMMARY_PATH = "/materials/summary/"
THERMO_PATH = "/materials/thermo/"

_PAGING = {"_limit", "_skip", "_page", "_per_page", "_fields", "_all_fields"}
_SUMMARY_FILTERS = {
    "elements",
    "exclude_elements",
    "chemsys",
    "material_ids",
    "energy_above_hull_min",
    "energy_above_hull_max",
    "nsites_min",
    "nsites_max",
    "theoretical",
    "deprecated",
}
_THERMO_FILTERS = {"chemsys", "thermo_types", "material_ids"}


@dataclass
class RecordedRequest:
    """One request the server received."""

    path: str
    params: dict[str, str]
    api_key: str | None


@dataclass
class FakeMPState:
    """Documents served and failure switches (change them while the server runs)."""

    summary_docs: list[dict[str, Any]] = field(default_factory=list)
    thermo_docs: list[dict[str, Any]] = field(default_factory=list)
    api_key: str = TEST_API_KEY
    fail_first: int = 0
    fail_status: int = 429
    always_status: int | None = None
    heartbeat_status: int = 200
    retry_after_s: int | None = None
    delay_s: float = 0.0
    heartbeat_delay_s: float = 0.0
    raw_replies: dict[str, bytes] = field(default_factory=dict)
    echo_key_in_errors: bool = False
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0  # data requests being answered now
    max_in_flight: int = 0  # the most at once so far (a client's concurrency)

    def data_requests(self, path: str) -> list[RecordedRequest]:
        """The recorded requests to one data route."""
        return [r for r in self.requests if r.path == path]


def _as_bool(text: str) -> bool:
    return text.strip().lower() in {"true", "1"}


def _split(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def _matches_summary(doc: dict[str, Any], params: dict[str, str]) -> bool:
    elements = set(doc["elements"])
    if "elements" in params and not set(_split(params["elements"])) <= elements:
        return False
    if "exclude_elements" in params and set(_split(params["exclude_elements"])) & elements:
        return False
    if "chemsys" in params and doc["chemsys"] not in _split(params["chemsys"]):
        return False
    if "material_ids" in params and doc["material_id"] not in _split(params["material_ids"]):
        return False
    for name, key in (("energy_above_hull", "energy_above_hull"), ("nsites", "nsites")):
        if f"{name}_min" in params and doc[key] < float(params[f"{name}_min"]):
            return False
        if f"{name}_max" in params and doc[key] > float(params[f"{name}_max"]):
            return False
    if "theoretical" in params and doc["theoretical"] != _as_bool(params["theoretical"]):
        return False
    return not ("deprecated" in params and doc.get("deprecated", False) != _as_bool(params["deprecated"]))


def _matches_thermo(doc: dict[str, Any], params: dict[str, str]) -> bool:
    if "chemsys" in params and doc["chemsys"] not in _split(params["chemsys"]):
        return False
    if "thermo_types" in params and doc["thermo_type"] not in _split(params["thermo_types"]):
        return False
    return not ("material_ids" in params and doc["material_id"] not in _split(params["material_ids"]))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the access log
        pass

    def _send(
        self, status: int, payload: dict[str, Any] | bytes, headers: dict[str, str] | None = None
    ) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        html = body.lstrip().startswith(b"<")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if html else "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (time-out tests)

    def _wait(self, delay_s: float) -> None:
        """Answer late; a server that stops answers its waiting requests at once (nobody reads them)."""
        if delay_s:
            self.server.stopping.wait(delay_s)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        state = self.server.state
        url = urlparse(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        with state.lock:
            state.requests.append(RecordedRequest(url.path, params, self.headers.get("x-api-key")))
        if url.path == "/heartbeat":
            self._wait(state.heartbeat_delay_s)
        if url.path in state.raw_replies:
            if url.path != "/heartbeat":
                self._wait(state.delay_s)
            self._send(200, state.raw_replies[url.path])
            return
        if url.path == "/heartbeat" and state.heartbeat_status != 200:
            self._send(state.heartbeat_status, {"detail": f"simulated {state.heartbeat_status}"})
            return
        if url.path == "/heartbeat":
            self._send(
                200, {"db_version": "2025_09_25", "version": "0.87.3", "access_controlled_batch_ids": []}
            )
            return
        if url.path not in (SUMMARY_PATH, THERMO_PATH):
            self._send(404, {"detail": "Not Found"})
            return
        if self.headers.get("x-api-key") != state.api_key:
            echo = f": {self.headers.get('x-api-key')}" if state.echo_key_in_errors else ""
            self._send(401, {"detail": f"Invalid API key{echo}"})
            return
        with state.lock:
            failing = state.fail_first > 0
            state.fail_first -= int(failing)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self._wait(state.delay_s)
            if failing or state.always_status is not None:
                status = state.fail_status if failing else state.always_status
                retry = state.retry_after_s
                headers = {"Retry-After": str(retry)} if retry is not None else None
                self._send(status, {"detail": f"simulated {status}"}, headers)
                return
            self._answer(url.path, params)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _answer(self, path: str, params: dict[str, str]) -> None:
        state = self.server.state
        allowed = _SUMMARY_FILTERS if path == SUMMARY_PATH else _THERMO_FILTERS
        unknown = sorted(set(params) - allowed - _PAGING)
        if unknown:
            self._send(400, {"detail": f"unknown query parameters {unknown}"})
            return
        if path == SUMMARY_PATH:
            docs = [d for d in state.summary_docs if _matches_summary(d, params)]
        else:
            docs = [d for d in state.thermo_docs if _matches_thermo(d, params)]
        if "_page" in params:
            per_page = int(params.get("_per_page") or params.get("_limit") or 100)
            skip, limit = (int(params["_page"]) - 1) * per_page, per_page
        else:
            skip, limit = int(params.get("_skip", 0)), int(params.get("_limit", 100))
        page = docs[skip : skip + min(limit, 1000)]
        if "_fields" in params:
            fields = _split(params["_fields"])
            page = [{k: d[k] for k in fields if k in d} for d in page]
        self._send(200, {"data": page, "meta": {"total_doc": len(docs), "max_limit": 1000}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FakeMPState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.stopping = threading.Event()


class FakeMPServer:
    """The fake API on a free port of 127.0.0.1, as a context manager (``endpoint`` is its root URL)."""

    def __init__(self, state: FakeMPState | None = None) -> None:
        self.state = state or FakeMPState()
        self._server = _Server(self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def endpoint(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:41234/``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def __enter__(self) -> FakeMPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- documents


def summary_doc(
    material_id: str,
    structure: Structure,
    *,
    energy_above_hull: float,
    formation_energy_per_atom: float,
    band_gap: float,
    energy_per_atom: float,
    uncorrected_energy_per_atom: float,
    theoretical: bool = False,
) -> dict[str, Any]:
    """A summary document shaped like MP's (the fields this project reads, plus the ones filters use)."""
    composition = structure.composition
    return {
        "material_id": material_id,
        "structure": structure.as_dict(),
        "nsites": len(structure),
        "elements": sorted(el.symbol for el in composition.elements),
        "nelements": len(composition.elements),
        "chemsys": composition.chemical_system,
        "formula_pretty": composition.reduced_formula,
        "energy_above_hull": energy_above_hull,
        "formation_energy_per_atom": formation_energy_per_atom,
        "band_gap": band_gap,
        "is_stable": energy_above_hull == 0.0,
        "energy_per_atom": energy_per_atom,
        "uncorrected_energy_per_atom": uncorrected_energy_per_atom,
        "theoretical": theoretical,
        "deprecated": False,
    }


def _fcc_primitive(a_A: float) -> Lattice:
    return Lattice([[0, a_A / 2, a_A / 2], [a_A / 2, 0, a_A / 2], [a_A / 2, a_A / 2, 0]])


def lif() -> Structure:
    """Rock-salt LiF (primitive cell, as MP stores it), a = 4.03 A."""
    return Structure(_fcc_primitive(4.03), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def li2o() -> Structure:
    """Anti-fluorite Li2O (primitive cell), a = 4.61 A."""
    return Structure(_fcc_primitive(4.61), ["O", "Li", "Li"], [[0, 0, 0], [0.25] * 3, [0.75] * 3])


def li3n() -> Structure:
    """alpha-Li3N (P6/mmm), a = 3.65 A, c = 3.88 A: Li 1b and 2c, N 1a."""
    return Structure(
        Lattice.hexagonal(3.65, 3.88),
        ["Li", "Li", "Li", "N"],
        [[0, 0, 0.5], [1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0], [0, 0, 0]],
    )


def licoo2() -> Structure:
    """Layered LiCoO2 (R-3m, hexagonal setting), a = 2.82 A, c = 14.05 A: Co 3a, Li 3b, O 6c z = 0.2395.

    (Explicit sites: ``Structure.from_spacegroup`` takes about a second per call.)"""
    centring = [(0, 0, 0), (2 / 3, 1 / 3, 1 / 3), (1 / 3, 2 / 3, 2 / 3)]
    asymmetric = [("Co", (0, 0, 0)), ("Li", (0, 0, 0.5)), ("O", (0, 0, 0.2395)), ("O", (0, 0, -0.2395))]
    species, coords = [], []
    for symbol, site in asymmetric:
        for shift in centring:
            species.append(symbol)
            coords.append([(x + t) % 1 for x, t in zip(site, shift, strict=True)])
    return Structure(Lattice.hexagonal(2.82, 14.05), species, coords)


def li_metal() -> Structure:
    """bcc Li (primitive cell), a = 3.44 A."""
    a_A = 3.44
    return Structure(
        Lattice([[-a_A / 2, a_A / 2, a_A / 2], [a_A / 2, -a_A / 2, a_A / 2], [a_A / 2, a_A / 2, -a_A / 2]]),
        ["Li"],
        [[0, 0, 0]],
    )


def fcc_cobalt() -> Structure:
    """fcc Co (primitive cell), a = 3.52 A."""
    return Structure(_fcc_primitive(3.52), ["Co"], [[0, 0, 0]])


def dimer(symbol: str, bond_A: float) -> Structure:
    """A diatomic molecule in a 10 A box (MP's O2/N2/F2 references are molecular crystals; close enough)."""
    return Structure(
        Lattice.cubic(10.0), [symbol, symbol], [[0, 0, 0], [bond_A, 0, 0]], coords_are_cartesian=True
    )


def default_summary_docs() -> list[dict[str, Any]]:
    """Five materials; LiCoO2 is marked theoretical here only so that the ``theoretical`` filter has work."""
    specs = [
        ("mp-1138", lif(), 0.0, -3.10, 8.7, -5.01, -4.78),
        ("mp-1960", li2o(), 0.0, -2.07, 5.0, -4.99, -4.76),
        ("mp-2251", li3n(), 0.0, -0.43, 1.1, -3.94, -3.86),
        ("mp-22526", licoo2(), 0.0, -1.78, 2.2, -6.13, -5.68),
        ("mp-135", li_metal(), 0.0, 0.0, 0.0, -1.91, -1.91),
    ]
    return [
        summary_doc(
            mid,
            structure,
            energy_above_hull=e_hull,
            formation_energy_per_atom=e_form,
            band_gap=gap,
            energy_per_atom=e,
            uncorrected_energy_per_atom=e_unc,
            theoretical=mid == "mp-22526",
        )
        for mid, structure, e_hull, e_form, gap, e, e_unc in specs
    ]


_POTCARS = {"Li": "PAW_PBE Li_sv 10Sep2004", "O": "PAW_PBE O 08Apr2002", "Co": "PAW_PBE Co 06Sep2000"}
_POTCARS |= {"N": "PAW_PBE N 08Apr2002", "F": "PAW_PBE F 08Apr2002"}


def reference_entry(
    material_id: str,
    structure: Structure,
    uncorrected_eV_per_atom: float,
    *,
    hubbard_U: dict[str, float] | None = None,
) -> ComputedStructureEntry:
    """An MP-like GGA or GGA+U entry with the MP2020 corrections applied, as MP's thermo docs carry them."""
    run_type = "GGA+U" if hubbard_U else "GGA"
    symbols = sorted(el.symbol for el in structure.composition.elements)
    entry = ComputedStructureEntry(
        structure,
        uncorrected_eV_per_atom * len(structure),
        parameters={
            "run_type": run_type,
            "is_hubbard": bool(hubbard_U),
            "hubbards": {s: (hubbard_U or {}).get(s, 0.0) for s in symbols} if hubbard_U else {},
            "potcar_spec": [{"titel": _POTCARS[s], "hash": None} for s in symbols],
        },
        data={"material_id": material_id, "run_type": run_type},
        entry_id=f"{material_id}-{run_type}",
    )
    processed = MaterialsProject2020Compatibility(check_potcar=False).process_entry(entry)
    if processed is None:
        raise ValueError(f"MP2020 rejects the test entry {material_id}")
    return processed


def thermo_doc(entry: ComputedStructureEntry, thermo_type: str = "GGA_GGA+U") -> dict[str, Any]:
    """A thermo document holding one entry (MP keys ``entries`` by run type)."""
    material_id = entry.data["material_id"]
    return {
        "material_id": material_id,
        "thermo_id": f"{material_id}_{thermo_type}",
        "thermo_type": thermo_type,
        "chemsys": entry.composition.chemical_system,
        "entries": {entry.parameters["run_type"]: json.loads(json.dumps(entry.as_dict()))},
    }


def default_reference_entries() -> list[ComputedStructureEntry]:
    """Li-O, Li-F, Li-N and Co-Li-O references. Uncorrected energies are chosen so that, after the MP2020
    anion corrections, Li2O lies at -2.07 eV/atom and LiF at -3.10 eV/atom below the elements (MP's
    values), Li3N at -0.43 eV/atom."""
    return [
        reference_entry("mp-135", li_metal(), -1.9089),
        reference_entry("mp-12957", dimer("O", 1.23), -4.9480),
        reference_entry("mp-25", dimer("N", 1.10), -8.3365),
        reference_entry("mp-561203", dimer("F", 1.42), -1.9115),
        reference_entry("mp-54", fcc_cobalt(), -7.1083),
        reference_entry("mp-1960", li2o(), (3 * -2.07 + 2 * -1.9089 - 4.9480 + 0.687) / 3),
        reference_entry("mp-1138", lif(), (2 * -3.10 - 1.9089 - 1.9115 + 0.462) / 2),
        reference_entry("mp-2251", li3n(), (4 * -0.43 + 3 * -1.9089 - 8.3365 + 0.361) / 4),
        reference_entry("mp-22526", licoo2(), -5.68, hubbard_U={"Co": 3.32}),
    ]


@cache
def _default_docs_json() -> str:
    """The default documents, built once per process (pymatgen's symmetry and MP2020 set-up are slow)."""
    entries = default_reference_entries()
    thermo = [thermo_doc(e) for e in entries]
    r2scan = ComputedStructureEntry(
        li2o(),
        -6.1 * 3,
        parameters={"run_type": "r2SCAN"},
        data={"material_id": "mp-1960"},
        entry_id="mp-1960-r2SCAN",
    )
    thermo.append(thermo_doc(r2scan, thermo_type="GGA_GGA+U_R2SCAN"))
    return json.dumps({"summary": default_summary_docs(), "thermo": thermo})


def default_state() -> FakeMPState:
    """A fresh copy of the default documents: the five materials of :func:`default_summary_docs`, the
    entries of :func:`default_reference_entries` in ``GGA_GGA+U`` thermo docs, plus one
    ``GGA_GGA+U_R2SCAN`` Li2O doc that a ``GGA_GGA+U`` query must not return."""
    docs = json.loads(_default_docs_json())
    return FakeMPState(summary_docs=docs["summary"], thermo_docs=docs["thermo"])
