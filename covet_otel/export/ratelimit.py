"""Keeps a dead collector from flooding the application's log."""

from __future__ import annotations

import logging
import threading
import time

# Loggers through which the SDK reports failed exports, once per export interval or retry.
EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.sdk.metrics._internal.export",
)


class RateLimitFilter(logging.Filter):
    """Lets one WARNING-or-worse record per logger through every `interval` seconds and says
    how many were held back; lower levels pass untouched."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        now = time.monotonic()
        with self._lock:
            if now < self._next.get(record.name, 0.0):
                self._held[record.name] = self._held.get(record.name, 0) + 1
                return False
            self._next[record.name] = now + self.interval
            held = self._held.pop(record.name, 0)
        if held:
            record.msg = f"{record.msg} ({held} similar messages suppressed in the last {self.interval:g} s)"
        return True


_installed: RateLimitFilter | None = None


def install(interval: float = 60.0) -> RateLimitFilter:
    """Attach one shared filter to the export loggers (idempotent)."""
    global _installed
    if _installed is None:
        _installed = RateLimitFilter(interval)
        for name in EXPORT_LOGGERS:
            logging.getLogger(name).addFilter(_installed)
    return _installed
