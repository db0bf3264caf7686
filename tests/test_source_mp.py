"""The Materials Project source, through the real mp-api client, against a fake MP API on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mp_server import (
    SUMMARY_PATH,
    TEST_API_KEY,
    THERMO_PATH,
    FakeMPServer,
    default_state,
    li2o,
)
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.entries.computed_entries import ComputedStructureEntry

from screening.schema import REFERENCES_SCHEMA, STATUS_FAILED, STATUS_OK, STRUCTURES_SCHEMA, Col
from screening.sources.mp import (
    MPClientOptions,
    MPQuery,
    MPSourceError,
    fetch_reference_entries,
    iter_mp_rows,
    references_to_table,
    sub_systems,
)
from screening.structures import row_to_structure

pytestmark = pytest.mark.network


def fast(**options: float) -> MPClientOptions:
    """Client options for tests: short back-off, time-outs long enough for a loaded CI machine."""
    return MPClientOptions(
        **({"connect_timeout_s": 5.0, "read_timeout_s": 5.0, "backoff_base_s": 0.001} | options)
    )


FAST = {"api_key": TEST_API_KEY, "client_options": fast()}
ALL_IDS = {"mp-1138", "mp-1960", "mp-2251", "mp-22526", "mp-135"}


@pytest.fixture
def server() -> Iterator[FakeMPServer]:
    with FakeMPServer(default_state()) as running:
        yield running


def rows_of(server: FakeMPServer, query: MPQuery, **kwargs) -> list[dict]:
    return list(iter_mp_rows(query, endpoint=server.endpoint, **(FAST | kwargs)))


# --------------------------------------------------------------------------- queries


def test_empty_query_is_refused_before_any_request(server: FakeMPServer) -> None:
    with pytest.raises(ValueError, match="at least one filter"):
        MPQuery().filters()
    with pytest.raises(ValueError, match="at least one filter"):
        rows_of(server, MPQuery(limit=10))  # a limit alone is not a filter
    assert server.state.requests == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (MPQuery(elements=["Li", "Qx"]), "not a chemical element"),
        (MPQuery(chemsys="Li-Oo"), "not a chemical element"),
        (MPQuery(max_energy_above_hull_eV=-0.1), ">= 0"),
        (MPQuery(max_nsites=0), ">= 1"),
        (MPQuery(elements=["Li"], limit=0), ">= 1"),
    ],
)
def test_malformed_filters_are_refused(query: MPQuery, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        query.filters()


def test_filters_reach_the_server_as_query_parameters(server: FakeMPServer) -> None:
    query = MPQuery(
        elements=["Li"],
        exclude_elements=["Co", "F"],
        max_energy_above_hull_eV=0.05,
        max_nsites=3,
        theoretical=False,
    )
    rows = rows_of(server, query)
    (request,) = server.state.data_requests(SUMMARY_PATH)
    assert request.api_key == TEST_API_KEY
    params = request.params
    assert params["elements"] == "Li"
    assert params["exclude_elements"] == "Co,F"
    assert float(params["energy_above_hull_min"]) == 0.0
    assert float(params["energy_above_hull_max"]) == 0.05
    assert (int(params["nsites_min"]), int(params["nsites_max"])) == (1, 3)
    assert params["theoretical"].lower() == "false"
    assert set(params["_fields"].split(",")) >= {"material_id", "structure", "energy_above_hull"}
    assert {r[Col.ID] for r in rows} == {"mp-1960", "mp-135"}  # not LiF, LiCoO2, nor Li3N (4 sites)


def test_chemsys_and_theoretical_filters_select_materials(server: FakeMPServer) -> None:
    rows = rows_of(server, MPQuery(chemsys=["O-Li", "Li-N"]))
    assert server.state.data_requests(SUMMARY_PATH)[-1].params["chemsys"] == "Li-O,Li-N"
    assert {r[Col.ID] for r in rows} == {"mp-1960", "mp-2251"}
    rows = rows_of(server, MPQuery(theoretical=True))
    assert [r[Col.ID] for r in rows] == ["mp-22526"]
    assert rows[0][Col.MP_THEORETICAL] is True


def test_paging_returns_every_document_once(server: FakeMPServer) -> None:
    rows = rows_of(server, MPQuery(elements=["Li"]), page_size=2)
    ids = [r[Col.ID] for r in rows]
    assert sorted(ids) == sorted(ALL_IDS)
    pages = [(r.params.get("_skip"), r.params["_limit"]) for r in server.state.data_requests(SUMMARY_PATH)]
    assert pages == [(None, "2"), ("2", "2"), ("4", "1")]


def test_limit_stops_paging_early(server: FakeMPServer) -> None:
    rows = rows_of(server, MPQuery(elements=["Li"], limit=3), page_size=2)
    assert len(rows) == 3 and len({r[Col.ID] for r in rows}) == 3
    assert len(server.state.data_requests(SUMMARY_PATH)) == 2


def test_rows_carry_the_structure_and_mp_labels(server: FakeMPServer) -> None:
    rows = {r[Col.ID]: r for r in rows_of(server, MPQuery(elements=["Li", "O"]))}
    row = rows["mp-1960"]
    assert row[Col.SOURCE] == "mp" and row[Col.STATUS] == STATUS_OK
    assert row[Col.MP_ID] == "mp-1960"
    assert row[Col.CHEMICAL_FORMULA_REDUCED] == "Li2O" and row[Col.CHEMICAL_SYSTEM] == "Li-O"
    assert row[Col.MP_ENERGY_ABOVE_HULL] == 0.0 and row[Col.MP_IS_STABLE] is True
    assert row[Col.MP_FORMATION_ENERGY_PER_ATOM] == pytest.approx(-2.07)
    assert row[Col.MP_BAND_GAP] == pytest.approx(5.0)
    assert row[Col.MP_ENERGY_PER_ATOM] == pytest.approx(-4.99)
    assert row[Col.MP_UNCORRECTED_ENERGY_PER_ATOM] == pytest.approx(-4.76)
    assert row[Col.MP_THEORETICAL] is False
    rebuilt = row_to_structure(row)
    assert len(rebuilt) == len(li2o()) and StructureMatcher().fit(rebuilt, li2o())
    table = pa.Table.from_pylist(list(rows.values()), schema=STRUCTURES_SCHEMA)
    assert table.num_rows == len(rows)


def test_malformed_documents_become_failed_rows_without_losing_others(server: FakeMPServer) -> None:
    good = server.state.summary_docs[1]  # Li2O
    broken = dict(good, material_id="mp-9001", structure={"lattice": {"matrix": [[1, 0, 0]]}, "sites": []})
    unknown_element = json.loads(json.dumps(good))
    unknown_element["material_id"] = "mp-9002"
    unknown_element["structure"]["sites"][0]["species"] = [{"element": "Qx", "occu": 1}]
    no_structure = dict(good, material_id="mp-9003", structure=None)
    server.state.summary_docs += [broken, unknown_element, no_structure]
    rows = {r[Col.ID]: r for r in rows_of(server, MPQuery(elements=["Li", "O"]))}
    assert set(rows) == {"mp-1960", "mp-22526", "mp-9001", "mp-9002", "mp-9003"}
    for bad in ("mp-9001", "mp-9002", "mp-9003"):
        assert rows[bad][Col.STATUS] == STATUS_FAILED
        assert rows[bad][Col.ERROR].startswith(f"cannot parse MP structure of {bad}")
        assert rows[bad][Col.MP_ENERGY_ABOVE_HULL] == 0.0  # labels kept on the failed row
    assert "no structure" in rows["mp-9003"][Col.ERROR]
    assert rows["mp-1960"][Col.STATUS] == STATUS_OK and rows["mp-22526"][Col.STATUS] == STATUS_OK
    pa.Table.from_pylist(list(rows.values()), schema=STRUCTURES_SCHEMA)


# --------------------------------------------------------------------------- retries and errors


@pytest.mark.parametrize("n_429", [1, 2])
def test_rate_limit_then_success(server: FakeMPServer, n_429: int) -> None:
    """Ours is the only retry layer (mp-api's own urllib3 retries are off): n 429s cost n retries."""
    server.state.fail_first = n_429
    rows = rows_of(server, MPQuery(elements=["Li"]), client_options=fast(max_retries=2))
    assert {r[Col.ID] for r in rows} == ALL_IDS
    assert len(server.state.data_requests(SUMMARY_PATH)) == n_429 + 1


def test_persistent_server_error_gives_a_clear_error_after_bounded_retries(server: FakeMPServer) -> None:
    server.state.always_status = 500
    with pytest.raises(MPSourceError) as caught:
        rows_of(server, MPQuery(elements=["Li"]), client_options=fast(max_retries=2))
    message = str(caught.value)
    assert "/materials/summary/" in message and "HTTP 500" in message and "3 attempt(s)" in message
    assert len(server.state.data_requests(SUMMARY_PATH)) == 3


def test_time_outs_are_retried_then_reported(server: FakeMPServer) -> None:
    server.state.delay_s = 0.5
    start = time.perf_counter()
    with pytest.raises(MPSourceError, match=r"summary/ failed after 2 attempt\(s\).*no reply within"):
        rows_of(server, MPQuery(elements=["Li"]), client_options=fast(max_retries=1, read_timeout_s=0.05))
    assert time.perf_counter() - start < 5


def test_a_rejected_key_is_not_retried(server: FakeMPServer) -> None:
    with pytest.raises(MPSourceError, match=r"1 attempt\(s\), not retried: HTTP 401"):
        rows_of(server, MPQuery(elements=["Li"]), api_key="f" * 32)
    assert len(server.state.data_requests(SUMMARY_PATH)) == 1


def test_missing_key_is_a_clear_error(server: FakeMPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(MPSourceError, match="MP_API_KEY"):
        list(iter_mp_rows(MPQuery(elements=["Li"]), endpoint=server.endpoint))
    assert server.state.requests == []


def test_key_and_endpoint_come_from_the_environment(
    server: FakeMPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MP_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("MP_API_ENDPOINT", server.endpoint)
    rows = list(iter_mp_rows(MPQuery(chemsys="Li-N")))
    assert [r[Col.ID] for r in rows] == ["mp-2251"]


def test_unreachable_endpoint_names_the_route() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    one_retry = {"client_options": fast(max_retries=1)}
    with pytest.raises(MPSourceError, match=r"/heartbeat failed after 2 attempt\(s\).*connection failed"):
        list(
            iter_mp_rows(MPQuery(elements=["Li"]), endpoint=f"http://127.0.0.1:{port}", **(FAST | one_retry))
        )


# --------------------------------------------------------------------------- reference entries


def test_sub_systems_of_a_chemical_system() -> None:
    assert sub_systems("O-Li-Co") == ["Co", "Co-Li", "Co-Li-O", "Co-O", "Li", "Li-O", "O"]
    with pytest.raises(ValueError, match="not a chemical element"):
        sub_systems("Li-Xx")


def test_reference_entries_cover_every_sub_system_with_mp2020_corrections(server: FakeMPServer) -> None:
    entries = fetch_reference_entries(["Li-O", "O-Li-Co", "Li-O"], endpoint=server.endpoint, **FAST)
    (request,) = server.state.data_requests(THERMO_PATH)
    assert request.params["thermo_types"] == "GGA_GGA+U"
    assert sorted(request.params["chemsys"].split(",")) == sub_systems("Co-Li-O")
    assert [e.entry_id for e in entries] == sorted(
        ["mp-12957-GGA", "mp-135-GGA", "mp-1960-GGA", "mp-54-GGA", "mp-22526-GGA+U"]
    )  # the r2SCAN-mixed Li2O doc is not asked for; Li-F and Li-N are not sub-systems
    served = {
        e["entry_id"]: ComputedStructureEntry.from_dict(e)
        for doc in server.state.thermo_docs
        for e in doc["entries"].values()
    }
    for entry in entries:
        assert isinstance(entry, ComputedStructureEntry)
        assert entry.correction == pytest.approx(served[entry.entry_id].correction)
        assert entry.uncorrected_energy == pytest.approx(served[entry.entry_id].uncorrected_energy)
    by_id = {e.entry_id: e for e in entries}
    # MP2020: -0.687 eV per oxide O; -1.638 eV per Co with U in an oxide (plus the O term)
    assert by_id["mp-1960-GGA"].correction == pytest.approx(-0.687)
    assert by_id["mp-22526-GGA+U"].correction == pytest.approx(3 * -0.687 * 2 + 3 * -1.638)
    assert by_id["mp-135-GGA"].correction == 0.0


def test_reference_entries_give_mp_formation_energies_on_a_hull(server: FakeMPServer) -> None:
    """With the corrections kept, Li2O and LiF sit on their hulls at MP's formation energies
    (-2.07 and -3.10 eV/atom); dropping the corrections would give about -1.84 and -2.87."""
    entries = fetch_reference_entries(["Li-O", "F-Li", "Li-N"], endpoint=server.endpoint, **FAST)
    table = references_to_table(entries)
    rebuilt = [
        ComputedStructureEntry.from_dict(json.loads(s)) for s in table.column("entry_json").to_pylist()
    ]
    diagram = PhaseDiagram(rebuilt)
    expected = {"Li2O": -2.07, "LiF": -3.10, "Li3N": -0.43}
    for entry in rebuilt:
        if entry.composition.reduced_formula in expected:
            assert diagram.get_form_energy_per_atom(entry) == pytest.approx(
                expected[entry.composition.reduced_formula], abs=1e-6
            )
            assert diagram.get_e_above_hull(entry) == pytest.approx(0.0, abs=1e-9)


def test_references_round_trip_through_the_table(server: FakeMPServer, tmp_path) -> None:
    entries = fetch_reference_entries(["Co-Li-O"], endpoint=server.endpoint, **FAST)
    table = references_to_table(entries)
    assert table.schema.equals(REFERENCES_SCHEMA)  # metadata aside
    pq.write_table(table, tmp_path / "refs.parquet")
    rows = pq.read_table(tmp_path / "refs.parquet").to_pylist()
    assert len(rows) == len(entries)
    for row, entry in zip(rows, entries, strict=True):
        rebuilt = ComputedStructureEntry.from_dict(json.loads(row["entry_json"]))
        assert rebuilt.entry_id == entry.entry_id == row["entry_id"]
        assert rebuilt.energy == pytest.approx(entry.energy) == pytest.approx(row["energy_eV"])
        assert rebuilt.correction == pytest.approx(entry.correction) == pytest.approx(row["correction_eV"])
        assert [a.name for a in rebuilt.energy_adjustments] == [a.name for a in entry.energy_adjustments]
        assert rebuilt.structure == entry.structure
        assert row["chemical_system"] == entry.composition.chemical_system
        assert row["run_type"] == entry.parameters["run_type"]
        corrected = abs(entry.correction) > 0
        assert row["compatibility"] == ("MaterialsProject2020Compatibility" if corrected else None)
    assert references_to_table([]).num_rows == 0


def test_entries_sent_in_emmet_arrow_form_are_decoded(server: FakeMPServer) -> None:
    """emmet may send energy_adjustments as a JSON string and entry_id as an EntryID object."""
    doc = next(d for d in server.state.thermo_docs if d["material_id"] == "mp-1960")
    entry = doc["entries"]["GGA"]
    entry["energy_adjustments"] = json.dumps(entry["energy_adjustments"])
    entry["entry_id"] = {"identifier": "mp-1960", "suffix": "GGA", "separator": "-"}
    entries = {e.entry_id: e for e in fetch_reference_entries(["Li-O"], endpoint=server.endpoint, **FAST)}
    assert entries["mp-1960-GGA"].correction == pytest.approx(-0.687)
    assert entries["mp-1960-GGA"].energy_adjustments[0].name == "MP2020 anion correction (oxide)"


def test_reference_failures_name_the_thermo_route(server: FakeMPServer) -> None:
    assert fetch_reference_entries([], endpoint=server.endpoint, **FAST) == []
    server.state.always_status = 503
    with pytest.raises(MPSourceError, match=r"/materials/thermo/ failed after 2 attempt\(s\): HTTP 503"):
        fetch_reference_entries(
            ["Li-O"], endpoint=server.endpoint, **(FAST | {"client_options": fast(max_retries=1)})
        )


def test_a_failing_heartbeat_is_retried_then_reported(server: FakeMPServer) -> None:
    server.state.heartbeat_status = 503
    with pytest.raises(MPSourceError, match=r"/heartbeat failed after 3 attempt\(s\): HTTP 503"):
        rows_of(server, MPQuery(elements=["Li"]), client_options=fast(max_retries=2))
    assert len([r for r in server.state.requests if r.path == "/heartbeat"]) == 3
    assert server.state.data_requests(SUMMARY_PATH) == []


def test_a_malformed_key_is_refused_by_the_client(server: FakeMPServer) -> None:
    with pytest.raises(MPSourceError, match="not retried.*32 characters"):
        rows_of(server, MPQuery(elements=["Li"]), api_key="too-short")
    assert server.state.data_requests(SUMMARY_PATH) == []


def test_reference_queries_are_batched_and_paged(
    server: FakeMPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("screening.sources.mp.CHEMSYS_PER_REQUEST", 3)
    entries = fetch_reference_entries(["Co-Li-O"], endpoint=server.endpoint, page_size=1, **FAST)
    requests = server.state.data_requests(THERMO_PATH)
    batches = {r.params["chemsys"] for r in requests}
    assert sorted(",".join(batches).split(",")) == sub_systems("Co-Li-O")  # 7 systems in batches of <= 3
    assert all(len(b.split(",")) <= 3 for b in batches) and len(batches) == 3
    assert {r.params["_limit"] for r in requests} == {"1"}  # one entry per page
    assert len(requests) == len(entries) == 5


def test_a_malformed_reference_entry_is_an_error_not_a_gap(server: FakeMPServer) -> None:
    doc = next(d for d in server.state.thermo_docs if d["material_id"] == "mp-1960")
    del doc["entries"]["GGA"]["structure"]
    with pytest.raises(MPSourceError, match="malformed GGA reference entry of mp-1960"):
        fetch_reference_entries(["Li-O"], endpoint=server.endpoint, **FAST)


def test_page_size_is_clamped_to_what_the_server_serves(server: FakeMPServer) -> None:
    """The server serves at most 1000 per page; mp-api skips by the requested limit, so a larger page
    size would jump over documents 1000..page_size."""
    template = server.state.summary_docs[4]  # Li metal, 1 site
    server.state.summary_docs = [dict(template, material_id=f"mp-{100000 + i}") for i in range(1200)]
    rows = rows_of(server, MPQuery(elements=["Li"]), page_size=5000)
    assert len({r[Col.ID] for r in rows}) == 1200
