"""The health endpoints as a WSGI app, to mount in any WSGI framework (Flask, Django, ...).

Checks run on the registry's loop (or a private loop thread), never on the WSGI worker thread, so
async checks work here too; the worker thread waits at most the longest check timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .asgi import configured_token
from .format import HEADERS, authorized, endpoint_for
from .runner import HealthRegistry

StartResponse = Callable[..., Any]

_REASONS = {
    200: "200 OK",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    503: "503 Service Unavailable",
}
_TEXT = ("content-type", "text/plain; charset=utf-8")


def precheck(path: str, method: str) -> str | tuple[int, list[tuple[str, str]], bytes]:
    """The endpoint a request asks for, or the whole answer when it asks for none (404, 405);
    shared by the WSGI app and the standalone server."""
    endpoint = endpoint_for(path)
    if endpoint is None:
        return 404, [_TEXT], b"not found\n"
    if method not in ("GET", "HEAD"):
        return 405, [_TEXT, ("allow", "GET, HEAD")], b"method not allowed\n"
    return endpoint


def respond(
    registry: HealthRegistry, path: str, method: str, authorization: str | None, token: str | None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) for one request."""
    endpoint = precheck(path, method)
    if not isinstance(endpoint, str):
        return endpoint
    detailed = authorized(authorization, configured_token(token))
    code, body = registry.response_sync(endpoint, detailed)
    return code, list(HEADERS), body


class HealthWSGIApp:
    """GET /health, /health/live, /health/ready, /health/startup (PATH_INFO after the mount point)."""

    def __init__(self, registry: HealthRegistry, token: str | None = None) -> None:
        self.registry = registry
        self.token = token

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        code, headers, body = respond(
            self.registry, environ.get("PATH_INFO", ""), method, environ.get("HTTP_AUTHORIZATION"), self.token
        )
        headers.append(("content-length", str(len(body))))
        start_response(_REASONS.get(code, str(code)), headers)
        return [b"" if method == "HEAD" else body]
