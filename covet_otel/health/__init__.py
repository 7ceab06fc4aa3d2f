"""Health checks for Kubernetes-style probes: /health, /health/live, /health/ready, /health/startup.

    from covet_otel import health

    health.register_check("payments:reachable", ping_payments, critical=False, timeout=1.0)
    health.registry.add(health.database_check(pool))        # SELECT 1 through the app's pool
    app.mount("/health", health.health_asgi_app())           # or health_wsgi_app(), or serve(port)

See docs/health.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .asgi import HealthASGIApp
from .checks import (
    FAIL,
    PASS,
    WARN,
    Check,
    CheckFunc,
    CheckResult,
    database_check,
    disk_check,
    error_rate_check,
    memory_check,
    pool_check,
    redis_check,
)
from .runner import CheckRun, HealthRegistry, Round
from .wsgi import HealthWSGIApp

if TYPE_CHECKING:
    from .server import HealthServer


def __getattr__(name: str) -> Any:
    # the server module is imported only by processes that call serve()
    if name == "HealthServer":
        from .server import HealthServer

        return HealthServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The process-wide registry used when no other is given.
registry = HealthRegistry()


def register_check(name: str, func: CheckFunc, **options: Any) -> Check:
    """Register a sync or async check on the process-wide registry; options as in
    HealthRegistry.register (critical, timeout, interval, component_type)."""
    return registry.register(name, func, **options)


def health_asgi_app(registry: HealthRegistry | None = None, *, token: str | None = None) -> HealthASGIApp:
    """An ASGI app serving the health endpoints; `token` defaults to COVET_HEALTH_TOKEN."""
    return HealthASGIApp(registry or globals()["registry"], token)


def health_wsgi_app(registry: HealthRegistry | None = None, *, token: str | None = None) -> HealthWSGIApp:
    """A WSGI app serving the health endpoints; `token` defaults to COVET_HEALTH_TOKEN."""
    return HealthWSGIApp(registry or globals()["registry"], token)


def serve(
    port: int,
    host: str = "127.0.0.1",
    *,
    registry: HealthRegistry | None = None,
    token: str | None = None,
    idle_timeout: float | None = None,
    max_connections: int | None = None,
) -> HealthServer:
    """Serve the health endpoints on a background thread (port 0: any free port, see `.port`).

    A connection silent for `idle_timeout` seconds (default 5) is closed; beyond
    `max_connections` (default 64) the longest-idle one makes room for a new one."""
    from . import server

    return server.HealthServer(
        registry or globals()["registry"],
        port,
        host,
        token,
        idle_timeout=server.IDLE_TIMEOUT if idle_timeout is None else idle_timeout,
        max_connections=server.MAX_CONNECTIONS if max_connections is None else max_connections,
    )


def demo_health_app(backends: Any) -> HealthASGIApp:
    """The demo's health app: its PostgreSQL pool and Redis client (read at each run, since they
    are opened in the app's lifespan), the pool's use, disk, memory and the HTTP error rate."""
    demo = HealthRegistry()
    if getattr(backends, "database_url", None) or getattr(backends, "pool", None) is not None:
        demo.add(database_check(lambda: backends.pool))
        demo.add(pool_check(lambda: backends.pool))
    if getattr(backends, "redis_url", None) or getattr(backends, "redis", None) is not None:
        demo.add(redis_check(lambda: backends.redis))
    demo.add(disk_check("/"))
    demo.add(memory_check())
    demo.add(error_rate_check())
    return HealthASGIApp(demo)


__all__ = [
    "FAIL",
    "PASS",
    "WARN",
    "Check",
    "CheckResult",
    "CheckRun",
    "HealthASGIApp",
    "HealthRegistry",
    "HealthServer",
    "HealthWSGIApp",
    "Round",
    "database_check",
    "demo_health_app",
    "disk_check",
    "error_rate_check",
    "health_asgi_app",
    "health_wsgi_app",
    "memory_check",
    "pool_check",
    "redis_check",
    "register_check",
    "registry",
    "serve",
]
