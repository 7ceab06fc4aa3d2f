"""WSGI middleware: RED metrics by route template for any WSGI application."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from time import perf_counter
from typing import Any

from ._core import CURRENT, MARK, _Request, begin, content_length, finish, is_excluded, resolve_excluded

_logger = logging.getLogger("covet_otel")

Environ = MutableMapping[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
RouteFor = Callable[[Environ], "str | None"]


class CovetWSGIMiddleware:
    """Measures every request of the wrapped WSGI app, to the last byte of its response body.

    The route comes from a framework hook (Flask, Django: installed by their instrumentors) or
    from `route_for(environ)`; None means the fixed route `unmatched`. `excluded_paths` defaults
    to COVET_HTTP_EXCLUDED_PATHS (PATH_INFO values not measured, with everything below them).

    The request is recorded once, at whichever comes first: the server (or test client) reaching
    the end of the body, `close()`, or the body being dropped unfinished.
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
        if excluded and is_excluded(environ.get("PATH_INFO", ""), excluded):
            return None
        environ[MARK] = True
        # WSGI servers give no CONTENT_LENGTH (or "") for a request without a body
        length = content_length(environ.get("CONTENT_LENGTH") or "0")
        return begin(environ.get("REQUEST_METHOD", ""), length)
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
    """The app's response iterable, counted while the server iterates it.

    The request is recorded at the end of the body, at close(), or when this object (or its
    iterator) is dropped unfinished, whichever comes first: a server or test client that never
    calls close() (Flask's test client) must not leave the request unrecorded and in flight. The
    duration ends when the last chunk so far was handed over.
    """

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
                request.end = perf_counter()
                yield chunk
        except Exception:
            request.exception = True
            raise
        finally:
            _finish(request, self._environ, self._route_for)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            _finish(self._request, self._environ, self._route_for)

    def __del__(self) -> None:
        # never iterated nor closed (the server gave up before the body): record what is known
        try:
            if not self._request.finished:
                _finish(self._request, self._environ, self._route_for)
        except Exception:
            pass
