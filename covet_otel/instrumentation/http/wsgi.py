"""WSGI middleware: RED metrics by route template for any WSGI application."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from time import perf_counter
from typing import Any

from ._core import CURRENT, MARK, _Request, begin, finish, resolve_excluded

_logger = logging.getLogger("covet_otel")

Environ = MutableMapping[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
RouteFor = Callable[[Environ], "str | None"]


class CovetWSGIMiddleware:
    """Measures every request of the wrapped WSGI app, to the last byte of its response body.

    The route comes from a framework hook (Flask, Django: installed by their instrumentors) or
    from `route_for(environ)`; None means the fixed route `unmatched`. `excluded_paths` defaults
    to COVET_HTTP_EXCLUDED_PATHS (PATH_INFO prefixes not measured).
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        route_for: RouteFor | None = None,
        excluded_paths: Sequence[str] | None = None,
    ) -> None:
        self.app = app
        self._route_for = route_for
        self._excluded = resolve_excluded(excluded_paths)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return measure_wsgi(self.app, environ, start_response, self._excluded, self._route_for)


def measure_wsgi(
    app: WSGIApp,
    environ: Environ,
    start_response: StartResponse,
    excluded: tuple[str, ...],
    route_for: RouteFor | None = None,
) -> Iterable[bytes]:
    """Call `app` measured (the body of CovetWSGIMiddleware, reused by the framework patches)."""
    request = _begin(environ, excluded)
    if request is None:
        return app(environ, start_response)

    def start_wrapper(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        try:
            request.status = int(status[:3])
        except Exception:
            pass  # a malformed status line is the server's to reject
        if exc_info is None:
            return start_response(status, headers)
        return start_response(status, headers, exc_info)

    token = CURRENT.set(request)
    try:
        body = app(environ, start_wrapper)
    except BaseException as exc:
        if isinstance(exc, Exception):
            request.exception = True
        _finish(request, environ, route_for)
        raise
    finally:
        try:
            CURRENT.reset(token)
        except Exception:
            pass
    return _MeasuredBody(body, request, environ, route_for)


def _begin(environ: Environ, excluded: tuple[str, ...]) -> _Request | None:
    try:
        if MARK in environ:  # measured already by an outer copy
            return None
        if excluded and environ.get("PATH_INFO", "").startswith(excluded):
            return None
        environ[MARK] = True
        length = environ.get("CONTENT_LENGTH")
        return begin(environ.get("REQUEST_METHOD", ""), int(length) if length else 0)
    except Exception:
        _logger.debug("covet-otel: cannot measure this request", exc_info=True)
        return None


def _finish(request: _Request, environ: Environ, route_for: RouteFor | None) -> None:
    route = request.route
    if route is None and route_for is not None:
        try:
            route = route_for(environ)
        except Exception:
            _logger.debug("covet-otel: route lookup failed", exc_info=True)
    finish(request, route)


class _MeasuredBody:
    """The app's response iterable, counted while the server iterates it; the request is
    recorded at the last chunk (its duration covers a streamed body) or at close()."""

    __slots__ = ("_body", "_environ", "_request", "_route_for")

    def __init__(self, body: Iterable[bytes], request: _Request, environ: Environ, route_for: Any) -> None:
        self._body = body
        self._request = request
        self._environ = environ
        self._route_for = route_for

    def __iter__(self) -> Iterator[bytes]:
        request = self._request
        try:
            for chunk in self._body:
                try:
                    request.resp_bytes += len(chunk)
                except TypeError:
                    pass  # not bytes: the server's to reject, not ours
                yield chunk
        except Exception:
            request.exception = True
            raise
        request.end = perf_counter()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            _finish(self._request, self._environ, self._route_for)
