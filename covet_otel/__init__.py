"""covet-otel: production metrics for asyncpg, Redis and ASGI/WSGI services, on OpenTelemetry.

The recording API (events, auth failures, health) is imported on first use, so that the launcher's
start-up pays only for what a process uses.
"""

from __future__ import annotations

import importlib
from typing import Any

from .configuration import configure, shutdown
from .settings import Settings, SettingsError
from .version import __version__

_LAZY = {
    # security and business events, backups and migrations (docs/events.md)
    "record_auth_failure": "covet_otel.instrumentation.http.auth",
    "record_rate_limited": "covet_otel.events",
    "record_permission_denied": "covet_otel.events",
    "record_invalid_token": "covet_otel.events",
    "declare_business_event": "covet_otel.events",
    "record_business_event": "covet_otel.events",
    "backup": "covet_otel.events",
    "track_migration": "covet_otel.events",
    "set_pending_migrations": "covet_otel.events",
    # HTTP middleware for apps the framework instrumentors do not cover (docs/http.md)
    "CovetASGIMiddleware": "covet_otel.instrumentation.http",
    "CovetWSGIMiddleware": "covet_otel.instrumentation.http",
    # health probes (docs/health.md)
    "HealthRegistry": "covet_otel.health",
    "register_check": "covet_otel.health",
    "health_asgi_app": "covet_otel.health",
    "health_wsgi_app": "covet_otel.health",
    "serve_health": ("covet_otel.health", "serve"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'covet_otel' has no attribute {name!r}")
    module_name, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


__all__ = ["Settings", "SettingsError", "__version__", "configure", "shutdown", *_LAZY]
