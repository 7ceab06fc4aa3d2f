"""A small standalone health server for processes without HTTP of their own (workers, consumers).

server = covet_otel.health.serve(8080, host="0.0.0.0")   # returns at once; serves on a thread
...
server.stop()
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .runner import HealthRegistry
from .wsgi import respond


class HealthServer:
    """A threading HTTP server answering the health endpoints (each request on its own thread)."""

    def __init__(
        self, registry: HealthRegistry, port: int = 0, host: str = "127.0.0.1", token: str | None = None
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                path = self.path.split("?", 1)[0]
                code, headers, body = respond(
                    registry, path, self.command, self.headers.get("Authorization"), token
                )
                self.send_response(code)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:  # probes every few seconds: quiet
                pass

        self.registry = registry
        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="covet-health-server", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> HealthServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
