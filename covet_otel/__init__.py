"""covet-otel: production metrics for asyncpg, Redis and ASGI/WSGI services, on OpenTelemetry."""

from .configuration import configure, shutdown
from .settings import Settings, SettingsError
from .version import __version__

__all__ = ["Settings", "SettingsError", "__version__", "configure", "shutdown"]
