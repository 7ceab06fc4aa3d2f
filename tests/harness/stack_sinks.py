"""Notification sinks of the native stack: what Alertmanager's receivers deliver to.

- :class:`WebhookSink`: an HTTP server that records every POST (Alertmanager's webhook payload, parsed
  as JSON) with its path; the compose stack's webhook sink plays this part.
- :class:`SmtpSink`: an SMTP server (aiosmtpd) that records every message; Mailpit plays this part in
  the compose stack.

Both run in threads of the test process (no child process to start: they are ready at once) on free
loopback ports, and are context managers. ``wait_for(predicate, timeout)`` polls what arrived.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

from .servers import LOOPBACK, free_port

T = TypeVar("T")


class _Recorder(Generic[T]):
    def __init__(self) -> None:
        self._items: list[T] = []
        self._lock = threading.Lock()

    def _add(self, item: T) -> None:
        with self._lock:
            self._items.append(item)

    @property
    def received(self) -> list[T]:
        """Everything received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def wait_for(self, predicate: Callable[[T], bool], timeout: float = 60.0, interval: float = 0.25) -> T:
        """The first received item for which ``predicate`` holds; ``TimeoutError`` listing what did
        arrive otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            for item in self.received:
                if predicate(item):
                    return item
            if time.monotonic() >= deadline:
                seen = repr(self.received)[:4000]
                name = type(self).__name__
                raise TimeoutError(f"{name}: nothing matched within {timeout}s; received {seen}")
            time.sleep(interval)


@dataclass
class WebhookCall:
    path: str
    body: Any  # parsed JSON, or the raw text when it is not JSON
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """The alerts of an Alertmanager webhook payload ([] for anything else)."""
        return list(self.body.get("alerts", [])) if isinstance(self.body, dict) else []

    def has_alert(self, alertname: str, status: str | None = None) -> bool:
        """True when the payload carries ``alertname`` (with that ``status``: firing / resolved)."""
        return any(
            a.get("labels", {}).get("alertname") == alertname
            and (status is None or a.get("status") == status)
            for a in self.alerts
        )


class WebhookSink(_Recorder[WebhookCall]):
    """Records POSTs to any path; answers 200 "ok" (or ``status`` when set, to test retries)."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.host = LOOPBACK
        self.port = port or free_port()
        self.status = 200
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> WebhookSink:
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
                # "ok" as text, what Slack's incoming webhooks answer: Alertmanager's Slack integration
                # counts any other body as a failed notification (and then never sends its resolution);
                # webhook and PagerDuty receivers only look at the status
                self.send_response(sink.status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for_alert(self, alertname: str, status: str = "firing", timeout: float = 60.0) -> WebhookCall:
        return self.wait_for(lambda call: call.has_alert(alertname, status), timeout)

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message.get("subject", ""))

    @property
    def text(self) -> str:
        """All text parts (plain and HTML) of the message, decoded."""
        parts = []
        for part in self.message.walk():
            if part.get_content_maintype() == "text":
                parts.append(part.get_content())
        return "\n".join(parts)


class SmtpSink(_Recorder[Mail]):
    """An SMTP server (aiosmtpd, no TLS, no auth) recording every message."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.host = LOOPBACK
        self.port = port or free_port()
        self._controller: Any = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                sink._add(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
                return "250 OK"

        self._controller = Controller(Handler(), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for_subject(self, text: str, timeout: float = 60.0) -> Mail:
        return self.wait_for(lambda mail: text in mail.subject, timeout)

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
