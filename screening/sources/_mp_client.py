"""HTTP plumbing of the Materials Project source: credentials, client options, mp-api route clients, retries.

One retry layer, ours. mp-api's own session retries 429/502/504 and dropped connections through urllib3,
and its time-out is one number for connecting and reading; stacked under a retry of the whole call, a
hanging server kept the user waiting (silently) for (our attempts) x (mp-api's 4 tries) x (time-out). So
the route clients get a session of our own (:func:`_session`) that

* never retries (``HTTPAdapter`` with no retries) and applies the time-outs of :class:`MPClientOptions`
  (connect, read) to every request, whatever time-out mp-api passes;
* checks every reply before mp-api reads it (a response hook): 429 and 5xx raise ``requests.HTTPError``
  with the response (status and ``Retry-After`` kept), and a 200 whose body is not the API's JSON shape
  (``{"data": [objects...], "meta": {...}}``; HTML, truncated JSON, ``{"data": "oops"}``) raises
  :class:`_MalformedReply` instead of surfacing later as an ``AttributeError`` deep in mp-api.

Around each whole call, :func:`with_retries` retries 429, 5xx, time-outs and dropped connections with
bounded exponential back-off (``min(backoff_max_s, backoff_base_s * 2**(n - 1))``, or the server's
``Retry-After`` within the same bound), logging a warning before each wait so that the user knows what it
waits for. Anything else (400, 401/403, a bad key, a malformed reply) fails at once. Every failure is one
:class:`MPSourceError` line naming the URL of the route, the attempts, the HTTP status (when there was one),
the reason and what to do; the API key is redacted from every message and log line.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter

from screening.errors import InputError, ScreeningError

HEARTBEAT_ROUTE = "/heartbeat"
DEFAULT_ENDPOINT = "https://api.materialsproject.org/"

#: Logger of the Materials Project source (a warning before each retry).
LOG = logging.getLogger("screening.sources.mp")

_T = TypeVar("_T")
_REDACTED = "<MP_API_KEY>"


class MPSourceError(ScreeningError, RuntimeError):
    """A Materials Project request that failed for good (after retries, or at once when not transient)."""


@dataclass(frozen=True)
class MPClientOptions:
    """How the Materials Project client waits and retries.

    The longest a call can take against a server that accepts connections but never answers is about
    ``(max_retries + 1) * read_timeout_s`` plus the back-off waits: 4 x 60 s + 7 s with the defaults, with
    a warning logged before each retry.

    Attributes:
        connect_timeout_s: time allowed to open a connection, in seconds.
        read_timeout_s: time allowed between bytes of a reply (in practice: for the server to start
            answering), in seconds.
        max_retries: retries after the first attempt, for 429, 5xx, time-outs and dropped connections.
        backoff_base_s: the n-th retry waits ``backoff_base_s * 2**(n-1)`` seconds...
        backoff_max_s: ...but never more than this (also caps a server's ``Retry-After``), in seconds.
    """

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_retries: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("connect_timeout_s", "read_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InputError(
                    f"MP client option {name} must be a positive number of seconds, got {value!r}"
                )
        for name in ("backoff_base_s", "backoff_max_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise InputError(f"MP client option {name} must be >= 0 seconds, got {value!r}")
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise InputError(
                f"MP client option max_retries must be an integer >= 0, got {self.max_retries!r}"
            )

    def backoff_s(self, retry: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before the ``retry``-th retry (1, 2, ...), honouring a server's ``Retry-After``."""
        wait_s = self.backoff_base_s * 2 ** (retry - 1)
        if retry_after_s is not None:
            wait_s = max(wait_s, retry_after_s)
        return min(self.backoff_max_s, wait_s)


# --------------------------------------------------------------------------- replies


class _MalformedReply(requests.RequestException):
    """A 200 reply whose body is not what the API sends (not JSON, or JSON of the wrong shape)."""


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_body(response: requests.Response) -> str:
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type or response.content.lstrip()[:1] == b"<":
        return "an HTML page instead of JSON"
    if not response.content.strip():
        return "an empty body"
    return f"a body that is not valid JSON ({_one_line(response.text, 80)!r})"


def _shape_error(body: Any, *, heartbeat: bool) -> str | None:
    """What is wrong with the shape of a decoded 200 reply (None: nothing)."""
    if not isinstance(body, dict):
        return f"JSON {type(body).__name__} instead of an object"
    if heartbeat:
        return None
    if "data" not in body:
        return f"JSON without a 'data' field (fields: {sorted(body)[:8]})"
    data = body["data"]
    if not isinstance(data, list):
        return (
            f"'data' is a {type(data).__name__} ({_one_line(repr(data), 60)}) instead of a list of documents"
        )
    bad = next((i for i, doc in enumerate(data) if not isinstance(doc, dict)), None)
    if bad is not None:
        return f"document {bad} of 'data' is a {type(data[bad]).__name__} instead of an object"
    meta = body.get("meta")
    if meta is not None and not isinstance(meta, dict):
        return f"'meta' is a {type(meta).__name__} instead of an object"
    total = (meta or {}).get("total_doc")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        return f"'meta.total_doc' is {total!r} instead of a count"
    return None


def _check_reply(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """Response hook: raise on 429/5xx (``HTTPError``) and on a 200 that is not the API's JSON."""
    status = response.status_code
    if status == 429 or status >= 500:
        raise requests.HTTPError(f"HTTP {status}", response=response)
    if status != 200:
        return response  # mp-api reports other statuses itself (and splits long queries on 414/422)
    import orjson  # what mp-api decodes with (stricter than json: no NaN)

    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise _MalformedReply(_describe_body(response), response=response) from None
    problem = _shape_error(body, heartbeat=response.url.split("?", 1)[0].endswith(HEARTBEAT_ROUTE))
    if problem:
        raise _MalformedReply(problem, response=response)
    return response


class _TimeoutAdapter(HTTPAdapter):
    """An adapter that never retries and always applies the (connect, read) time-outs of the options."""

    def __init__(self, options: MPClientOptions) -> None:
        super().__init__(max_retries=0)
        self._timeout = (options.connect_timeout_s, options.read_timeout_s)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = self._timeout
        return super().send(request, *args, **kwargs)


def _session(key: str, options: MPClientOptions) -> requests.Session:
    """The session the route clients use (see the module docstring)."""
    from importlib.metadata import version

    session = requests.Session()
    session.headers["x-api-key"] = key
    session.headers["user-agent"] = f"mp-api/{version('mp-api')} (screening)"
    adapter = _TimeoutAdapter(options)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.hooks["response"].append(_check_reply)
    return session


# --------------------------------------------------------------------------- failures and retries


@dataclass(frozen=True)
class _Failure:
    status: int | None
    reason: str
    transient: bool
    hint: str = ""
    retry_after_s: float | None = None


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _retry_after_s(response: requests.Response) -> float | None:
    try:
        value = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None  # absent, or an HTTP date (the back-off applies)
    return value if math.isfinite(value) and value >= 0 else None


def _connection_detail(error: requests.ConnectionError) -> str:
    """``[Errno 111] Connection refused`` rather than urllib3's ``Max retries exceeded with url: ...`` (we make
    no urllib3 retries)."""
    text = str(error)
    match = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    return _one_line(match.group(0) if match else text, 160)


def _error_detail(response: requests.Response) -> str:
    """The ``detail`` of an error reply (the API's shape), else its text, on one line."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail.strip():
        return _one_line(detail, 120)
    if response.content.lstrip()[:1] == b"<":
        return "an HTML error page"
    return _one_line(response.text, 120) or f"HTTP {response.status_code}"


def _http_failure(status: int, detail: str, retry_after_s: float | None = None) -> _Failure:
    if status == 429:
        return _Failure(status, "rate-limited", True, "wait a few minutes before trying again", retry_after_s)
    if status >= 500:
        hint = "the Materials Project API may be down; try again later"
        return _Failure(status, f"server error ({detail})", True, hint, retry_after_s)
    if status in (401, 403):
        return _Failure(status, detail, False, "check MP_API_KEY (keys: https://materialsproject.org/api)")
    if status == 404:
        return _Failure(status, detail, False, "check MP_API_ENDPOINT: it has no such route")
    return _Failure(status, detail, False)


def _failure_of(exc: BaseException, options: MPClientOptions) -> _Failure:
    """Classify an error raised by mp-api/requests: HTTP status if any, reason, whether to retry, and a hint."""
    for error in _exception_chain(exc):
        if isinstance(error, _MalformedReply):
            hint = (
                "check that MP_API_ENDPOINT is the Materials Project API (a web page means a proxy, login or "
                "maintenance page), else try again later"
            )
            return _Failure(200, f"malformed reply: {error}", False, hint)
        if isinstance(error, requests.ConnectTimeout):
            reason = f"no connection within connect_timeout_s={options.connect_timeout_s:g} s"
            return _Failure(None, reason, True, "check the network and MP_API_ENDPOINT")
        if isinstance(error, requests.Timeout):
            reason = f"no reply within read_timeout_s={options.read_timeout_s:g} s"
            return _Failure(
                None, reason, True, "the server may be overloaded; try again later or wait longer"
            )
        if isinstance(error, requests.ConnectionError):
            reason = f"connection failed ({_connection_detail(error)})"
            return _Failure(None, reason, True, "check the network and MP_API_ENDPOINT")
        if isinstance(error, requests.HTTPError) and error.response is not None:
            status = error.response.status_code
            return _http_failure(status, _error_detail(error.response), _retry_after_s(error.response))
    message = str(exc).strip()
    match = re.search(r"status code (\d{3})", message)
    if match:
        return _http_failure(int(match.group(1)), _one_line(message.split("with message:", 1)[-1]))
    kind = "" if type(exc).__name__ == "MPRestError" else f"{type(exc).__name__}: "  # a surprise: say what
    return _Failure(None, _one_line(f"{kind}{message}", 300) if message else type(exc).__name__, False)


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, _REDACTED) if secret else text


def with_retries(
    action: Callable[[], _T], *, url: str, options: MPClientOptions, secret: str | None = None
) -> _T:
    """Run ``action``; retry transient failures up to ``options.max_retries`` times with bounded back-off.

    Args:
        action: the request(s) to make.
        url: the URL of the route, named in warnings and in the error.
        options: time-outs and retries (the time-outs only name themselves in messages here).
        secret: the API key, redacted from every message.

    Raises:
        MPSourceError: on a failure that is not transient, or when the retries are spent.
    """
    attempts = options.max_retries + 1
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:  # mp-api raises MPRestError, requests, and (on surprises) anything
            failure = _failure_of(exc, options)
            if failure.transient and attempt < attempts:
                wait_s = options.backoff_s(attempt, failure.retry_after_s)
                status = f"HTTP {failure.status}, " if failure.status is not None else ""
                LOG.warning(
                    "%s",
                    _redact(
                        f"Materials Project {url}: {status}{failure.reason} (attempt {attempt} of {attempts}); "
                        f"retrying in {wait_s:.3g} s",
                        secret,
                    ),
                )
                time.sleep(wait_s)
                continue
            status = f"HTTP {failure.status}" if failure.status is not None else "no HTTP status"
            kind = "" if failure.transient else ", not retried"
            hint = f"; {failure.hint}" if failure.hint else ""
            message = (
                f"Materials Project request to {url} failed after {attempt} attempt(s){kind}: "
                f"{status}, {failure.reason}{hint}"
            )
            leaks = bool(secret) and any(secret in str(e) for e in _exception_chain(exc))
            raise MPSourceError(_redact(message, secret)) from (None if leaks else exc)
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- credentials and clients


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


def route_url(endpoint: str, route: str) -> str:
    """``http://host/`` + ``/materials/summary/`` -> ``http://host/materials/summary/``."""
    return endpoint.rstrip("/") + "/" + route.lstrip("/")


def _heartbeat(session: requests.Session, endpoint: str) -> tuple[str, list[str]]:
    """``GET /heartbeat`` (without the key) as mp-api's ``_get_heartbeat_info`` does, but with the session's
    time-outs and checks: (database version, access-controlled batch ids)."""
    response = session.get(route_url(endpoint, HEARTBEAT_ROUTE), headers={"x-api-key": None})
    response.raise_for_status()
    body = response.json()
    version = body.get("db_version")
    batch_ids = body.get("access_controlled_batch_ids")
    return (
        version if isinstance(version, str) else "",
        [str(b) for b in batch_ids] if isinstance(batch_ids, list) else [],
    )


@functools.cache
def _available_fields(rester_class: type) -> list[str]:
    """The fields of a route's document model.

    mp-api checks each requested field against ``available_fields``, a property that rebuilds the
    document model's JSON schema on every access: about 0.1 s per field and call, i.e. a second per
    summary search on our small CPUs, paid again on every retry.
    """
    return list(rester_class.document_model.model_json_schema()["properties"])


def open_rester(rester_class: type, key: str, endpoint: str, *, options: MPClientOptions) -> Any:
    """An mp-api route client (``SummaryRester``, ``ThermoRester``) returning plain dicts, on the session of
    :func:`_session`, built after a successful ``/heartbeat`` (retried like any call); use it as a context
    manager to close its session.

    The client class is subclassed to compute ``available_fields`` once and to take the heartbeat just
    made instead of mp-api's own (``requests.get`` without a time-out, which hangs on a hanging server).
    """
    session = _session(key, options)

    def build() -> Any:
        heartbeat = _heartbeat(session, endpoint)
        fields = _available_fields(rester_class)
        client_class = type(
            rester_class.__name__,
            (rester_class,),
            {
                "available_fields": property(lambda self: fields),
                "_get_heartbeat_info": staticmethod(lambda endpoint: heartbeat),
            },
        )
        return client_class(
            api_key=key,
            endpoint=endpoint,
            session=session,
            use_document_model=False,
            mute_progress_bars=True,
            timeout=options.read_timeout_s,
        )

    try:
        return with_retries(build, url=route_url(endpoint, HEARTBEAT_ROUTE), options=options, secret=key)
    except BaseException:
        session.close()
        raise
