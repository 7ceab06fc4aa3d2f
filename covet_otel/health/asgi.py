"""The health endpoints as an ASGI app, to mount in any ASGI framework (Starlette, FastAPI, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .format import HEADERS, authorized, endpoint_for
from .runner import HealthRegistry

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_HEADERS = [(k.encode(), v.encode()) for k, v in HEADERS]
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


def configured_token(token: str | None) -> str | None:
    if token is not None:
        return token
    from covet_otel.settings import current

    return current().health_token


class HealthASGIApp:
    """GET /health, /health/live, /health/ready, /health/startup (also without the /health prefix
    when mounted at /health). 200 for pass and warn, 503 for fail."""

    def __init__(self, registry: HealthRegistry, token: str | None = None) -> None:
        self.registry = registry
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":  # when run on its own by an ASGI server
            await _lifespan(receive, send)
            return
        if kind != "http":
            return
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        endpoint = endpoint_for(path)
        if endpoint is None:
            await _plain(send, 404, b"not found\n")
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _plain(send, 405, b"method not allowed\n", [(b"allow", b"GET, HEAD")])
            return
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                break
        detailed = authorized(authorization, configured_token(self.token))
        code, body = await self.registry.response(endpoint, detailed)
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [*_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


async def _plain(send: Send, code: int, text: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [*_TEXT, (b"content-length", str(len(text)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": text})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
