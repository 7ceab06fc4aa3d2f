"""ASGI middleware: RED metrics by route template for any ASGI application."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from time import perf_counter
from typing import Any

from ._core import CURRENT, MARK, _Request, begin, content_length, finish, is_excluded, resolve_excluded
from .routes import starlette_route

_logger = logging.getLogger("covet_otel")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RouteFor = Callable[[Scope], "str | None"]

# Requests of these methods without Content-Length carry no body in practice: skip the counting
# receive wrapper (one closure per request) for them.
_BODYLESS = frozenset(("GET", "HEAD"))


class CovetASGIMiddleware:
    """Measures every `http` request of the wrapped ASGI app; other scope types pass through.

    `route_for(scope)` returns the route template after the app handled the request (default:
    Starlette/FastAPI routing, read from the scope); None means the fixed route `unmatched`.
    `excluded_paths` defaults to COVET_HTTP_EXCLUDED_PATHS (paths not measured, with everything
    below them: `/health` excludes `/health/ready` but not `/healthz`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        route_for: RouteFor | None = None,
        excluded_paths: Sequence[str] | None = None,
    ) -> None:
        self.app = app
        self._route_for = route_for
        self._excluded = resolve_excluded(excluded_paths)
        self._has_excluded = bool(self._excluded)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = self._begin(scope) if scope["type"] == "http" else None
        if request is None:
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")

        async def send_wrapper(message: Message) -> None:
            last = False
            try:
                kind = message["type"]
                if kind == "http.response.body":
                    request.resp_bytes += len(message.get("body", b""))
                    last = not message.get("more_body", False)
                elif kind == "http.response.start":
                    request.status = message["status"]
                elif kind == "http.response.pathsend":
                    last = True
            except Exception:
                pass  # an odd message is the server's to reject, not ours
            await send(message)
            if last:
                request.end = perf_counter()

        if request.req_bytes == -1:  # no Content-Length: count the body as the app reads it
            request.req_bytes = 0
            if request.method not in _BODYLESS:
                receive = _counting_receive(receive, request)
        token = CURRENT.set(request)
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            request.exception = True
            raise
        finally:
            self._done(request, scope, root_path, token)

    def _begin(self, scope: Scope) -> _Request | None:
        try:
            if MARK in scope:  # measured already by an outer copy (a mounted sub-app, or by hand twice)
                return None
            if self._has_excluded:
                # match the path the app routes on: without the root path, like PATH_INFO in WSGI
                path = scope.get("path", "")
                root_path = scope.get("root_path", "")
                if root_path and path.startswith(root_path):
                    path = path[len(root_path) :]
                if is_excluded(path, self._excluded):
                    return None
            scope[MARK] = True
            length = -1
            for name, value in scope.get("headers", ()):
                if name == b"content-length":
                    length = content_length(value)
                    break
            return begin(scope.get("method", ""), length)
        except Exception:
            _logger.debug("covet-otel: cannot measure this request", exc_info=True)
            return None

    def _done(self, request: _Request, scope: Scope, root_path: str, token: Any) -> None:
        try:
            CURRENT.reset(token)
        except Exception:
            pass  # the app switched contexts under us; the variable dies with this task anyway
        route = request.route
        if route is None:
            try:
                route = self._route_for(scope) if self._route_for else starlette_route(scope, root_path)
            except Exception:
                _logger.debug("covet-otel: route lookup failed", exc_info=True)
        finish(request, route)


def _counting_receive(receive: Receive, request: _Request) -> Receive:
    async def counting() -> Message:
        message = await receive()
        try:
            if message["type"] == "http.request":
                request.req_bytes += len(message.get("body", b""))
        except Exception:
            pass
        return message

    return counting
