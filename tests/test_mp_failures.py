"""How the Materials Project client fails: time-outs, retries, malformed replies, and the API key kept out of
every message. The real mp-api client against the fake MP API on 127.0.0.1 (tests/mp_server.py)."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator

import pytest
from mp_server import SUMMARY_PATH, TEST_API_KEY, THERMO_PATH, FakeMPServer, default_state

from screening.errors import InputError, ScreeningError
from screening.sources.mp import (
    MPClientOptions,
    MPQuery,
    MPSourceError,
    fetch_reference_entries,
    iter_mp_rows,
)

pytestmark = pytest.mark.network

LOGGER = "screening.sources.mp"
HANGS_S = 3600.0  # a server that never answers (the fake server releases it when it stops)


def fast(**options: float) -> MPClientOptions:
    return MPClientOptions(
        **({"connect_timeout_s": 5.0, "read_timeout_s": 5.0, "backoff_base_s": 0.001} | options)
    )


@pytest.fixture
def server() -> Iterator[FakeMPServer]:
    with FakeMPServer(default_state()) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
def warm_client() -> None:
    """One query first, so that the timed tests do not time mp-api's import (a second or two, cold)."""
    with FakeMPServer(default_state()) as running:
        rows_of(running, fast())


def rows_of(server: FakeMPServer, options: MPClientOptions, api_key: str = TEST_API_KEY) -> list[dict]:
    query = MPQuery(elements=["Li"])
    return list(iter_mp_rows(query, api_key=api_key, endpoint=server.endpoint, client_options=options))


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


# --------------------------------------------------------------------------- options


def test_default_options_bound_the_wait_on_a_hanging_server() -> None:
    options = MPClientOptions()
    assert (options.connect_timeout_s, options.read_timeout_s, options.max_retries) == (10.0, 60.0, 3)
    waits_s = [options.backoff_s(n) for n in range(1, options.max_retries + 1)]
    assert waits_s == [1.0, 2.0, 4.0]
    worst_s = (options.max_retries + 1) * options.read_timeout_s + sum(waits_s)
    assert worst_s < 5 * 60  # was about 10.5 minutes, silent


def test_back_off_is_exponential_and_bounded() -> None:
    options = MPClientOptions(backoff_base_s=1.0, backoff_max_s=5.0)
    assert [options.backoff_s(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert options.backoff_s(1, retry_after_s=3.0) == 3.0  # the server's Retry-After, when longer...
    assert options.backoff_s(1, retry_after_s=100.0) == 5.0  # ...within the bound


@pytest.mark.parametrize(
    "bad",
    [
        {"connect_timeout_s": 0},
        {"read_timeout_s": -1.0},
        {"read_timeout_s": float("inf")},
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"backoff_base_s": -0.1},
    ],
)
def test_bad_options_are_input_errors(bad: dict) -> None:
    with pytest.raises(InputError, match=f"MP client option {next(iter(bad))}"):
        MPClientOptions(**bad)


# --------------------------------------------------------------------------- time-outs


def test_a_hanging_server_fails_fast_with_a_short_read_time_out(caplog: pytest.LogCaptureFixture) -> None:
    start = time.perf_counter()
    with FakeMPServer(default_state()) as server:
        server.state.delay_s = HANGS_S
        with pytest.raises(MPSourceError) as caught:
            rows_of(server, fast(read_timeout_s=0.2, max_retries=1, backoff_base_s=0.05))
    assert time.perf_counter() - start < 2.0  # the client gave up, and the server stopped by itself
    message = str(caught.value)
    assert f"{server.endpoint}materials/summary/ failed after 2 attempt(s)" in message
    assert "no reply within read_timeout_s=0.2 s" in message and "\n" not in message
    (warning,) = retry_warnings(caplog)
    assert "materials/summary/" in warning and "no reply within read_timeout_s=0.2 s" in warning
    assert "(attempt 1 of 2); retrying in 0.05 s" in warning


def test_a_hanging_heartbeat_is_timed_out_too(server: FakeMPServer) -> None:
    """mp-api's own heartbeat (``requests.get`` without a time-out) is never called: ours is."""
    server.state.heartbeat_delay_s = HANGS_S
    start = time.perf_counter()
    with pytest.raises(
        MPSourceError, match=r"/heartbeat failed after 1 attempt\(s\): no HTTP status, no reply"
    ):
        rows_of(server, fast(read_timeout_s=0.2, max_retries=0))
    assert time.perf_counter() - start < 2.0


def test_one_heartbeat_per_client(server: FakeMPServer) -> None:
    assert len(rows_of(server, fast())) == 5
    assert [r.path for r in server.state.requests] == ["/heartbeat", SUMMARY_PATH]


# --------------------------------------------------------------------------- retries


def test_429_then_success_logs_the_wait_and_honours_retry_after(
    server: FakeMPServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.state.fail_first, server.state.retry_after_s = 1, 1
    start = time.perf_counter()
    rows = rows_of(server, fast(max_retries=2, backoff_max_s=0.2))
    assert time.perf_counter() - start >= 0.2  # Retry-After (1 s), capped by backoff_max_s
    assert len(rows) == 5 and len(server.state.data_requests(SUMMARY_PATH)) == 2
    (warning,) = retry_warnings(caplog)
    assert "HTTP 429, rate-limited (attempt 1 of 3); retrying in 0.2 s" in warning


def test_retries_exhausted(server: FakeMPServer, caplog: pytest.LogCaptureFixture) -> None:
    server.state.always_status = 503
    with pytest.raises(MPSourceError) as caught:
        rows_of(server, fast(max_retries=2))
    message = str(caught.value)
    assert "materials/summary/ failed after 3 attempt(s): HTTP 503, server error (simulated 503)" in message
    assert message.endswith("may be down; try again later") and "\n" not in message
    assert len(server.state.data_requests(SUMMARY_PATH)) == 3
    assert [w.split("(attempt ")[1][:6] for w in retry_warnings(caplog)] == ["1 of 3", "2 of 3"]


# --------------------------------------------------------------------------- malformed replies

MALFORMED = {
    "data-not-a-list": (b'{"data": "oops"}', "'data' is a str ('oops') instead of a list of documents"),
    "html": (
        b"<!DOCTYPE html><html><body>Down for maintenance</body></html>",
        "an HTML page instead of JSON",
    ),
    "truncated": (b'{"data": [{"material_id": "mp-1', "not valid JSON"),
    "empty": (b"", "an empty body"),
    "no-data-field": (b'{"meta": {"total_doc": 0}}', "JSON without a 'data' field"),
    "not-an-object": (b"[1, 2]", "JSON list instead of an object"),
    "documents-not-objects": (b'{"data": [1, 2]}', "document 0 of 'data' is a int"),
    "meta-not-an-object": (b'{"data": [], "meta": "x"}', "'meta' is a str"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_summary_reply_is_one_clear_line(server: FakeMPServer, case: str) -> None:
    body, reason = MALFORMED[case]
    server.state.raw_replies[SUMMARY_PATH] = body
    with pytest.raises(MPSourceError) as caught:
        rows_of(server, fast(max_retries=3))
    message = str(caught.value)
    assert "materials/summary/ failed after 1 attempt(s), not retried: HTTP 200, malformed reply" in message
    assert reason in message and "check that MP_API_ENDPOINT" in message and "\n" not in message
    assert len(server.state.data_requests(SUMMARY_PATH)) == 1  # not retried


def test_a_malformed_thermo_reply_names_the_thermo_route(server: FakeMPServer) -> None:
    server.state.raw_replies[THERMO_PATH] = b'{"data": "oops"}'
    with pytest.raises(
        MPSourceError, match=r"materials/thermo/ failed after 1 attempt\(s\), not retried.*'data'"
    ):
        fetch_reference_entries(
            ["Li-O"], api_key=TEST_API_KEY, endpoint=server.endpoint, client_options=fast()
        )


def test_a_web_page_at_the_endpoint_is_named_at_the_heartbeat(server: FakeMPServer) -> None:
    server.state.raw_replies["/heartbeat"] = b"<html><body>Welcome to nginx!</body></html>"
    with pytest.raises(
        MPSourceError, match=r"/heartbeat failed .*an HTML page instead of JSON.*MP_API_ENDPOINT"
    ):
        rows_of(server, fast())
    assert server.state.data_requests(SUMMARY_PATH) == []


@pytest.mark.parametrize(
    ("entries", "what"), [(None, "no entries"), ("oops", "entries that are not an object")]
)
def test_a_thermo_document_without_entries_is_an_error(
    server: FakeMPServer, entries: object, what: str
) -> None:
    """A document without its entries would leave a hole in the hull, silently."""
    doc = next(d for d in server.state.thermo_docs if d["material_id"] == "mp-1960")
    doc["entries"] = entries
    with pytest.raises(MPSourceError, match=f"thermo document of mp-1960 has {what}"):
        fetch_reference_entries(
            ["Li-O"], api_key=TEST_API_KEY, endpoint=server.endpoint, client_options=fast()
        )


# --------------------------------------------------------------------------- the key stays secret


def test_the_api_key_never_appears_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_key = "fedcba9876543210fedcba9876543210"
    messages = []
    with FakeMPServer(default_state()) as server:
        server.state.echo_key_in_errors = True  # a careless server repeating the key in its 401
        for key, switches in [
            (wrong_key, {}),
            (TEST_API_KEY, {"always_status": 500}),
            (TEST_API_KEY, {"always_status": None, "delay_s": HANGS_S}),
            (TEST_API_KEY, {"delay_s": 0.0, "raw_replies": {SUMMARY_PATH: b"<html>no</html>"}}),
        ]:
            for name, value in switches.items():
                setattr(server.state, name, value)
            with pytest.raises(ScreeningError) as caught:
                rows_of(server, fast(max_retries=1, read_timeout_s=0.2), api_key=key)
            messages.append("".join(traceback.format_exception(caught.value)))  # with the chained errors
    assert "HTTP 401, Invalid API key: <MP_API_KEY>; check MP_API_KEY" in messages[0]
    logged = caplog.text + "\n".join(messages)
    assert len(retry_warnings(caplog)) == 2  # the 500 and the time-out were retried once each
    assert TEST_API_KEY not in logged and wrong_key not in logged
