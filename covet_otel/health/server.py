"""A small standalone health server for processes without HTTP of their own (workers, consumers).

server = covet_otel.health.serve(8080, host="0.0.0.0")   # returns at once; serves on a thread
...
server.stop()

Built to stay answerable when probed hard: connections live on one asyncio loop of the server's
own (an idle keep-alive connection costs a few KB, not a thread); each response leaves in one
write with TCP_NODELAY (headers and body written apart meet Nagle and delayed ACK: ~40 ms per
keep-alive probe); a connection that sends nothing for `idle_timeout` seconds, or dribbles its
request head for that long, is closed; at `max_connections` the longest-idle connection makes
room for a new one. Check rounds run where the registry runs them for sync callers (its `loop`,
else its private loop thread), so a check that blocks cannot stall this loop: /health/live
answers without a round.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from http import HTTPStatus

from .asgi import configured_token
from .format import authorized
from .runner import HealthRegistry
from .wsgi import precheck

IDLE_TIMEOUT = 5.0  # seconds, like uvicorn's keep-alive default; a kubelet reconnects per probe
MAX_CONNECTIONS = 64
_MAX_HEAD = 16 * 1024  # request line and headers: a probe sends a few hundred bytes
_MAX_BODY = 64 * 1024  # probes send no body; a small one is read and ignored, a big one refused


class HealthServer:
    """Serves the health endpoints on `host:port` (port 0: any free port, see `.port`)."""

    def __init__(
        self,
        registry: HealthRegistry,
        port: int = 0,
        host: str = "127.0.0.1",
        token: str | None = None,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if not idle_timeout > 0 or max_connections < 1:
            raise ValueError("idle_timeout must be > 0 seconds and max_connections at least 1")
        self.registry = registry
        self.token = token
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        # bound here, in the caller's thread, so a taken port is the caller's OSError at once
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=256)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._connections: dict[asyncio.StreamWriter, _Connection] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="covet-health-server", daemon=True
        )
        self._thread.start()
        self._server: asyncio.AbstractServer = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, sock=self._socket, limit=_MAX_HEAD), self._loop
        ).result(10)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def connections(self) -> int:
        """Connections open right now (idle ones included)."""
        return len(self._connections)

    def stop(self) -> None:
        if self._loop.is_closed():
            return

        async def close() -> None:
            for task in self._tasks:
                task.cancel()
            self._server.close()
            for writer in list(self._connections):
                writer.close()
            await asyncio.sleep(0)

        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._loop.is_running():
                self._loop.close()
            self._socket.close()

    def background_rounds(self, interval: float) -> None:
        """Run a round every `interval` seconds whether or not anything probes, so the health
        metrics stay current (the zero-code server: dashboards read them)."""

        async def loop() -> None:
            while True:
                try:
                    await self._answer("/health", "GET", None)
                except Exception:  # a failed round is the checks' business, reported by them
                    pass
                await asyncio.sleep(interval)

        self._loop.call_soon_threadsafe(lambda: self._tasks.add(self._loop.create_task(loop())))

    def forget_in_child(self) -> None:
        """In a forked child: the serving thread stayed in the parent; close our copy of the
        listening socket so that only the parent holds it."""
        self._socket.close()

    def __enter__(self) -> HealthServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one connection ------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._make_room()
        connection = self._connections[writer] = _Connection()
        try:
            while await self._one_request(reader, writer, connection):
                pass
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass  # the client went away: nothing to answer
        finally:
            self._connections.pop(writer, None)
            writer.close()

    def _make_room(self) -> None:
        if len(self._connections) < self.max_connections:
            return
        idle = [(c.since, w) for w, c in self._connections.items() if not c.busy]
        if idle:
            _, oldest = min(idle, key=lambda item: item[0])
            self._connections.pop(oldest, None)
            oldest.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection
    ) -> bool:
        """Read and answer one request; False when the connection is to be closed."""
        connection.busy = False
        connection.since = time.monotonic()
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError):
            return False  # idle, slow or gone: close without a word, as HTTP servers do
        except asyncio.LimitOverrunError:
            await _send(
                writer, 431, "text/plain; charset=utf-8", b"request header fields too large\n", close=True
            )
            return False
        connection.busy = True
        request = _parse(head)
        if request is None:
            await _send(writer, 400, "text/plain; charset=utf-8", b"bad request\n", close=True)
            return False
        method, path, version, headers = request
        keep_alive = _keep_alive(version, headers.get("connection", ""))
        if "transfer-encoding" in headers:
            await _send(
                writer, 501, "text/plain; charset=utf-8", b"request bodies are not supported\n", close=True
            )
            return False
        length = headers.get("content-length", "0").strip()
        if not (length.isdigit() and length.isascii()):
            await _send(writer, 400, "text/plain; charset=utf-8", b"bad content-length\n", close=True)
            return False
        if int(length) > _MAX_BODY:
            await _send(writer, 413, "text/plain; charset=utf-8", b"request body too large\n", close=True)
            return False
        if int(length):
            await asyncio.wait_for(reader.readexactly(int(length)), self.idle_timeout)
        code, extra, body = await self._answer(path, method, headers.get("authorization"))
        await _send(writer, code, None, b"" if method == "HEAD" else body, extra, not keep_alive, len(body))
        return keep_alive

    async def _answer(self, path: str, method: str, authorization: str | None) -> tuple[int, list, bytes]:
        fixed = precheck(path, method)
        if not isinstance(fixed, str):
            return fixed
        detailed = authorized(authorization, configured_token(self.token))
        registry = self.registry
        quick = registry.immediate(fixed, detailed)
        if quick is None:
            future = asyncio.run_coroutine_threadsafe(
                registry.response(fixed, detailed), registry.sync_loop()
            )
            try:
                quick = await asyncio.wait_for(asyncio.wrap_future(future), registry.round_limit())
            except Exception:  # the checks' loop is stuck or gone: that is a failed round
                future.cancel()
                quick = registry.failed_response(detailed)
        code, body = quick
        return code, registry.response_headers(), body


class _Connection:
    __slots__ = ("busy", "since")

    def __init__(self) -> None:
        self.busy = False
        self.since = time.monotonic()


def _parse(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
        if not version.startswith("HTTP/1.") or not method.isalpha():
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                return None
            headers[name.lower()] = value.strip()
    except ValueError:
        return None
    if target.startswith(("http://", "https://")):  # absolute form: the path is what counts
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    return method, target.split("?", 1)[0], version, headers


def _keep_alive(version: str, connection: str) -> bool:
    tokens = {t.strip().lower() for t in connection.split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


async def _send(
    writer: asyncio.StreamWriter,
    code: int,
    content_type: str | None,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
    close: bool = False,
    length: int | None = None,
) -> None:
    """The whole response in one write: status line, headers and body."""
    lines = [f"HTTP/1.1 {code} {HTTPStatus(code).phrase}"]
    if content_type is not None:
        lines.append(f"content-type: {content_type}")
    lines += [f"{name}: {value}" for name, value in headers or ()]
    lines.append(f"content-length: {len(body) if length is None else length}")
    if close:
        lines.append("connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
