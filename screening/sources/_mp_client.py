"""HTTP plumbing of the Materials Project source: credentials, mp-api route clients, bounded retries.

mp-api's own session retries 429/502/504 a few times (urllib3, back-off factor 0.1 s). Around each whole
call :func:`with_retries` adds a bounded retry with exponential back-off (``backoff_base_s *
2**(attempt - 1)``) for 429, any 5xx, time-outs and dropped connections; other errors (400, 401/403, a
bad key) fail at once. The final :class:`MPSourceError` names the route, the HTTP status (when there was
one) and the number of attempts. mp-api reports most failures as ``MPRestError`` with the status only in
its message, so the status is read from the exception chain and, failing that, the message.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from screening.errors import ScreeningError

HEARTBEAT_ROUTE = "/heartbeat"
DEFAULT_ENDPOINT = "https://api.materialsproject.org/"

_T = TypeVar("_T")


class MPSourceError(ScreeningError, RuntimeError):
    """A Materials Project request that failed for good (after retries, or at once when not transient)."""


@dataclass(frozen=True)
class _Failure:
    status: int | None
    reason: str
    transient: bool


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _failure_of(exc: BaseException) -> _Failure:
    """Classify an error raised by mp-api/requests: HTTP status if any, and whether to retry."""
    for error in _exception_chain(exc):
        if isinstance(error, requests.Timeout):
            return _Failure(None, "timed out", True)
        if isinstance(error, requests.exceptions.RetryError):
            match = re.search(r"too many (\d{3}) error responses", str(error))
            status = int(match.group(1)) if match else None
            return _Failure(status, "the client's own retries were exhausted", True)
        if isinstance(error, requests.ConnectionError):
            return _Failure(None, f"connection failed ({error})", True)
        if isinstance(error, requests.HTTPError) and error.response is not None:
            status = error.response.status_code
            return _Failure(status, error.response.text[:200], status == 429 or status >= 500)
    message = str(exc).strip()
    match = re.search(r"status code (\d{3})", message)
    if match:
        status = int(match.group(1))
        detail = message.split("with message:", 1)[-1].strip()[:200]
        return _Failure(status, detail, status == 429 or status >= 500)
    return _Failure(None, message.splitlines()[0][:300] if message else type(exc).__name__, False)


def with_retries(action: Callable[[], _T], *, route: str, max_retries: int, backoff_base_s: float) -> _T:
    """Run ``action``; retry transient failures up to ``max_retries`` times with exponential back-off."""
    from mp_api.client.core import MPRestError

    attempts = max(0, int(max_retries)) + 1
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (MPRestError, requests.RequestException) as exc:
            failure = _failure_of(exc)
            if failure.transient and attempt < attempts:
                time.sleep(backoff_base_s * 2 ** (attempt - 1))
                continue
            status = f"HTTP {failure.status}" if failure.status is not None else "no HTTP status"
            kind = "" if failure.transient else ", not retried"
            raise MPSourceError(
                f"Materials Project request to {route} failed after {attempt} attempt(s){kind}: "
                f"{status}, {failure.reason}"
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def credentials(api_key: str | None, endpoint: str | None) -> tuple[str, str]:
    """The API key (argument, else ``MP_API_KEY``) and root URL (argument, else ``MP_API_ENDPOINT``, else
    the public API; always ending in ``/``, as mp-api joins routes onto it).

    Raises:
        MPSourceError: when there is no key.
    """
    key = api_key or os.environ.get("MP_API_KEY")
    if not key:
        raise MPSourceError(
            "no Materials Project API key: pass api_key or set the MP_API_KEY environment variable "
            "(get one at https://materialsproject.org/api)"
        )
    url = endpoint or os.environ.get("MP_API_ENDPOINT") or DEFAULT_ENDPOINT
    return key, url.rstrip("/") + "/"


def _probe_heartbeat(endpoint: str, timeout_s: float) -> None:
    """GET ``/heartbeat`` with a time-out (mp-api's own heartbeat call has none), raising on an HTTP error."""
    requests.get(endpoint + HEARTBEAT_ROUTE.lstrip("/"), timeout=timeout_s).raise_for_status()


@functools.cache
def _with_cached_fields(rester_class: type) -> type:
    """``rester_class`` with its ``available_fields`` computed once.

    mp-api checks each requested field against ``available_fields``, a property that rebuilds the
    document model's JSON schema on every access: about 0.1 s per field and call, i.e. a second per
    summary search on our small CPUs, paid again on every retry.
    """
    fields = list(rester_class.document_model.model_json_schema()["properties"])
    return type(rester_class.__name__, (rester_class,), {"available_fields": property(lambda self: fields)})


def open_rester(
    rester_class: type, key: str, endpoint: str, *, timeout_s: float, max_retries: int, backoff_base_s: float
) -> Any:
    """An mp-api route client (``SummaryRester``, ``ThermoRester``) returning plain dicts, built after a
    successful ``/heartbeat`` (retried like any call); use it as a context manager to close its session."""

    def build() -> Any:
        _probe_heartbeat(endpoint, timeout_s)
        return _with_cached_fields(rester_class)(
            api_key=key,
            endpoint=endpoint,
            use_document_model=False,
            mute_progress_bars=True,
            timeout=timeout_s,
        )

    return with_retries(build, route=HEARTBEAT_ROUTE, max_retries=max_retries, backoff_base_s=backoff_base_s)
