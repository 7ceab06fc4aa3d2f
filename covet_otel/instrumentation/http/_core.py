"""What ASGI and WSGI middleware share: the per-request record and the hot-path recording.

A request is measured by one `_Request` object that lives in a context variable while the app runs,
so code deep inside the app (a framework's router hook, `record_auth_failure`) can annotate the
request without a reference to it. Series are resolved once per (method, route, status) and kept
in a module-level dict: after the first request of a kind, finishing a request is a handful of
lock-protected additions on series objects (see docs/performance.md, "HTTP").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextvars import ContextVar
from time import perf_counter

from ... import instruments
from ...instruments import CounterSeries, HistogramSeries, UpDownSeries

_logger = logging.getLogger("covet_otel")

# Scope/environ key set on a request being measured, so nested middleware copies measure it once.
MARK = "covet_otel.http"
UNMATCHED = "unmatched"  # the route of a request that matched no route (catalogue: ROUTE label)
OTHER_METHOD = "_OTHER"
_STANDARD_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
METHODS: dict[str, str] = {m: m for m in _STANDARD_METHODS}

_AUTO_AUTH_REASON = {401: "unauthorized", 403: "forbidden"}

# Own caches in front of Instrument.series(): one dict lookup per request instead of three. Route
# values come from route templates (bounded); the cap only guards against a custom route function
# that returns raw paths, which the instruments then fold into `other` on their own.
_MAX_CACHED = 10_000


class _Request:
    """One request being measured; fields filled by the middleware and by framework hooks."""

    __slots__ = (
        "auth_recorded",
        "end",
        "exception",
        "finished",
        "method",
        "req_bytes",
        "resp_bytes",
        "route",
        "start",
        "status",
    )

    def __init__(self, method: str, req_bytes: int) -> None:
        self.method = method
        self.req_bytes = req_bytes
        self.resp_bytes = 0
        self.route: str | None = None  # set by a framework hook; else read after the app returns
        self.status = 0
        self.exception = False
        self.auth_recorded = False
        self.finished = False
        self.end = 0.0  # when the last body byte was handed to the server
        self.start = perf_counter()


CURRENT: ContextVar[_Request | None] = ContextVar("covet_http_request", default=None)


class _Bundle:
    __slots__ = ("duration", "exceptions", "req_size", "requests", "resp_size")

    def __init__(self, method: str, route: str, status: str) -> None:
        labels = (method, route, status)
        self.requests: CounterSeries = instruments.counter("covet_http_requests_total").series(labels)
        self.duration: HistogramSeries = instruments.histogram("covet_http_request_duration_seconds").series(
            labels
        )
        self.resp_size: HistogramSeries = instruments.histogram("covet_http_response_body_size_bytes").series(
            labels
        )
        self.req_size: HistogramSeries = instruments.histogram("covet_http_request_body_size_bytes").series(
            (method, route)
        )
        self.exceptions: CounterSeries = instruments.counter("covet_http_exceptions_total").series(
            (method, route)
        )


_bundles: dict[tuple[str, str, int], _Bundle] = {}
_in_flight: dict[str, UpDownSeries] = {}


def _bundle(key: tuple[str, str, int]) -> _Bundle:
    found = _bundles.get(key)
    if found is None:
        found = _Bundle(key[0], key[1], str(key[2]))
        if len(_bundles) < _MAX_CACHED:
            _bundles[key] = found
    return found


def in_flight(method: str) -> UpDownSeries:
    series = _in_flight.get(method)
    if series is None:
        series = instruments.updowncounter("covet_http_requests_in_flight").series((method,))
        _in_flight[method] = series
    return series


def begin(raw_method: str, req_bytes: int) -> _Request:
    method = METHODS.get(raw_method, OTHER_METHOD)
    request = _Request(method, req_bytes)
    in_flight(method).add(1)
    return request


def finish(request: _Request, route: str | None) -> None:
    """Record a completed request once (WSGI may reach here from both iteration end and close())."""
    if request.finished:
        return
    request.finished = True
    try:
        duration = (request.end or perf_counter()) - request.start
        status = 500 if request.exception else request.status
        if status == 0:  # the app returned without starting a response: servers answer 500
            status = 500
        method = request.method
        bundle = _bundles.get((method, route or UNMATCHED, status)) or _bundle(
            (method, route or UNMATCHED, status)
        )
        bundle.requests.add(1)
        bundle.duration.record(duration)
        bundle.resp_size.record(request.resp_bytes)
        if request.req_bytes >= 0:  # UNKNOWN_LENGTH (a malformed Content-Length): size not known
            bundle.req_size.record(request.req_bytes)
        if request.exception:
            bundle.exceptions.add(1)
        in_flight(method).add(-1)
        if not request.auth_recorded:
            reason = _AUTO_AUTH_REASON.get(request.status)
            if reason is not None:
                request.auth_recorded = True
                auth_series(reason).add(1)
    except Exception:  # never let a metrics bug reach the application
        _logger.debug("covet-otel: recording an HTTP request failed", exc_info=True)


_auth: dict[str, CounterSeries] = {}


def auth_series(reason: str) -> CounterSeries:
    series = _auth.get(reason)
    if series is None:
        series = instruments.counter("covet_app_auth_failures_total").series((reason,))
        if len(_auth) < _MAX_CACHED:
            _auth[reason] = series
    return series


def resolve_excluded(explicit: Sequence[str] | None) -> tuple[str, ...]:
    """Path prefixes that are not measured: the argument, else COVET_HTTP_EXCLUDED_PATHS;
    without their trailing slash, as `is_excluded` expects them."""
    if explicit is None:
        from ...settings import current

        explicit = current().http_excluded_paths
    return tuple(p.rstrip("/") for p in explicit)


def is_excluded(path: str, excluded: tuple[str, ...]) -> bool:
    """True when `path` is one of `excluded` or below one of them, on a segment boundary:
    `/health` excludes `/health` and `/health/ready`, never `/healthz` or `/healthcare/x`."""
    if not path.startswith(excluded):  # the common case: one C-level call, no match at all
        return False
    for prefix in excluded:
        if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
            return True
    return False


# A request whose Content-Length header is malformed: counted, its body size not recorded.
UNKNOWN_LENGTH = -2


def content_length(raw: str | bytes | None) -> int:
    """The body size a Content-Length value states (RFC 9110: ASCII digits only, so no sign,
    underscore or non-ASCII digit that int() would take); -1 when absent, UNKNOWN_LENGTH when
    malformed."""
    if raw is None:
        return -1
    if raw.isdigit() and raw.isascii():
        return int(raw)
    stripped = raw.strip()
    if stripped and stripped.isdigit() and stripped.isascii():
        return int(stripped)
    return UNKNOWN_LENGTH
