"""A stand-in for the two link targets of a notification, serving the repository's own files:

- ``/runbooks/<file>``: 200 when runbooks/<file> exists (the runbook base URL points here);
- ``/d/<uid>?var-<name>=...``: 200 when a dashboard of grafana/ has that UID and a template variable
  for every ``var-`` parameter, which is what Grafana needs to open it filtered (Grafana itself is
  AGPL and not used by this project).

Anything else is 404. ``requests`` records every path asked for."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from harness import free_port

REPO = Path(__file__).resolve().parents[2]


def dashboards() -> dict[str, set[str]]:
    found = {}
    for path in (REPO / "grafana").rglob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if "uid" in data and "panels" in data:
            found[data["uid"]] = {v["name"] for v in data.get("templating", {}).get("list", [])}
    return found


class LinkServer:
    def __init__(self) -> None:
        self.host, self.port = "127.0.0.1", free_port()
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def status_for(self, target: str) -> int:
        parts = urlsplit(target)
        if parts.path.startswith("/runbooks/"):
            name = parts.path.removeprefix("/runbooks/")
            return 200 if "/" not in name and (REPO / "runbooks" / name).is_file() else 404
        if parts.path.startswith("/d/"):
            variables = dashboards().get(parts.path.removeprefix("/d/"))
            if variables is None:
                return 404
            wanted = {k.removeprefix("var-") for k in parse_qs(parts.query, keep_blank_values=True)}
            return 200 if wanted <= variables else 404
        return 404

    def start(self) -> LinkServer:
        links = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                links.requests.append(self.path)
                self.send_response(links.status_for(self.path))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="link-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
