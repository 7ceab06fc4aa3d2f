"""A webhook sink that answers like Slack's incoming webhooks.

harness.stack_sinks.WebhookSink answers 200 with an empty body; Alertmanager's Slack notifier
treats any body other than "ok" as an error and retries, which would duplicate deliveries in the
tests. This subclass differs only in that answer."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.stack_sinks import WebhookCall, WebhookSink


class SlackCompatibleSink(WebhookSink):
    """Records every POST like WebhookSink; answers 200 "ok"."""

    def start(self) -> SlackCompatibleSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw
                sink._add(WebhookCall(self.path, body, dict(self.headers.items())))
                self.send_response(sink.status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-sink", daemon=True)
        self._thread.start()
        return self
