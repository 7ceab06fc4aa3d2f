"""Zero-code health: `COVET_HEALTH_PORT` serves the endpoints for an unmodified application.

`configure()` (so `opentelemetry-instrument`) starts the standalone server on that port with an
`AutoHealthRegistry`: disk (the first of COVET_DISK_PATHS) and memory checks, plus, found at each
round, one database and one pool check per asyncpg pool the instrumentation has seen and one PING
check per Redis server that the application's redis-py clients talk to. Pools and clients are
discovered, never created or kept alive by this module: a pool that is closed or collected drops
its checks, a new one gets its own.

Check names (the `check` label of covet_health_check_status):
- `database.<pool>:responseTime`, `database.<pool>:connections` (`<pool>`: the pool label);
- `redis:responseTime` for the first Redis server seen, `redis.<n>:responseTime` for later ones;
- `disk:utilization`, `memory:utilization`.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from typing import Any

from .checks import Check, database_check, disk_check, memory_check, pool_check, redis_check
from .runner import HealthRegistry

_logger = logging.getLogger("covet_otel")

# A round runs this often even without probes, so that covet_health_check_status has fresh data
# for the dashboards and alerts whether or not anything probes (15 s: the export interval).
BACKGROUND_INTERVAL = 15.0

# Redis clients the application created, recorded by the redis instrumentation at construction.
_redis_clients: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_building = threading.local()  # set while this module builds a client of its own


def remember_redis_client(client: Any) -> None:
    """Called by the redis instrumentation for every client constructed (not per command)."""
    if getattr(_building, "active", False):
        return
    try:
        with _lock:
            _redis_clients.add(client)
    except TypeError:  # a client class without weak references: not watched
        pass


def _redis_target(client: Any) -> tuple[Any, ...] | None:
    """Where a client connects: (host, port, db, unix path, ssl), never its password."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if not isinstance(kwargs, dict):
        return None
    connection_class = getattr(pool, "connection_class", None)
    ssl = "SSL" in getattr(connection_class, "__name__", "")
    return (kwargs.get("host"), kwargs.get("port"), kwargs.get("db", 0), kwargs.get("path"), ssl)


class AutoHealthRegistry(HealthRegistry):
    """A HealthRegistry whose database and Redis checks follow what the application opened."""

    def __init__(self, disk_path: str = "/", **options: Any) -> None:
        super().__init__(**options)
        self.add(disk_check(disk_path))
        self.add(memory_check())
        self._dynamic: dict[str, Any] = {}  # check name -> identity of what it checks
        self._redis_names: dict[tuple[Any, ...], str] = {}
        self._redis_clients: dict[str, Any] = {}  # check name -> our own sync client

    def refresh(self) -> None:
        """Add checks for new pools and Redis servers; remove those of closed or dropped pools."""
        try:
            desired = {**self._pool_checks(), **self._redis_checks()}
        except Exception:  # discovery must never break a probe
            _logger.debug("covet-otel: health check discovery failed", exc_info=True)
            return
        for name in [n for n in self._dynamic if n not in desired]:
            self.remove(name)
            del self._dynamic[name]
        for name, (identity, build) in desired.items():
            if self._dynamic.get(name) != identity:
                self.add(build())
                self._dynamic[name] = identity

    def _pool_checks(self) -> dict[str, tuple[Any, Any]]:
        pools = sys.modules.get("covet_otel.instrumentation.asyncpg_pools")
        if pools is None:
            return {}
        found: dict[str, tuple[Any, Any]] = {}
        for state, pool in pools._live_pools():
            closing = getattr(pool, "is_closing", None)
            if closing is not None and closing():
                continue  # the application closed it (shutting down): not a failure of ours
            label = state.label

            def current(state: Any = state) -> Any:
                return state.pool()

            identity = (id(pool), label)
            found[f"database.{label}:responseTime"] = (
                identity,
                lambda label=label, current=current: database_check(
                    current, name=f"database.{label}:responseTime"
                ),
            )
            found[f"database.{label}:connections"] = (
                identity,
                lambda label=label, current=current: pool_check(
                    current, name=f"database.{label}:connections", pool_label=label
                ),
            )
        return found

    def _redis_checks(self) -> dict[str, tuple[Any, Any]]:
        with _lock:
            clients = list(_redis_clients)
        found: dict[str, tuple[Any, Any]] = {}
        for client in clients:
            target = _redis_target(client)
            if target is None:
                continue
            name = self._redis_names.get(target)
            if name is None:
                n = len(self._redis_names) + 1
                name = "redis:responseTime" if n == 1 else f"redis.{n}:responseTime"
                self._redis_names[target] = name
            if name not in found:
                found[name] = (target, lambda client=client, name=name: self._redis_check(client, name))
        return found

    def _redis_check(self, client: Any, name: str) -> Check:
        """A PING through a sync client of our own with the application's connection settings:
        an asyncio client is bound to the application's loop, and the checks run elsewhere."""
        import redis

        kwargs = dict(client.connection_pool.connection_kwargs)
        timeout = self.timeout_for(Check(name, lambda: None))
        keep = ("host", "port", "db", "username", "password", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
        options = {k: kwargs[k] for k in keep if kwargs.get(k) is not None}
        if kwargs.get("path"):
            options = {k: v for k, v in options.items() if k not in ("host", "port")}
            options["unix_socket_path"] = kwargs["path"]
        if "SSL" in getattr(client.connection_pool.connection_class, "__name__", ""):
            options["ssl"] = True
        _building.active = True
        try:
            own = redis.Redis(socket_timeout=timeout, socket_connect_timeout=timeout, **options)
        finally:
            _building.active = False
        old = self._redis_clients.pop(name, None)
        if old is not None:
            old.close()
        self._redis_clients[name] = own
        return redis_check(own, name=name)

    async def response(self, endpoint: str, detailed: bool = False) -> tuple[int, bytes]:
        self.refresh()
        return await super().response(endpoint, detailed)

    def response_sync(self, endpoint: str, detailed: bool = False) -> tuple[int, bytes]:
        self.refresh()
        return super().response_sync(endpoint, detailed)


_server: Any = None


def start(port: int, host: str, disk_path: str) -> Any:
    """Serve the zero-code health endpoints (idempotent; None when the port cannot be bound)."""
    global _server
    if _server is not None:
        return _server
    from .server import HealthServer

    registry = AutoHealthRegistry(disk_path)
    try:
        server = HealthServer(registry, port, host)
    except OSError as exc:
        _logger.warning(
            "covet-otel: cannot serve the health endpoints on %s:%s (%s); the application runs on "
            "without them. Set COVET_HEALTH_PORT to a free port.",
            host,
            port,
            exc,
        )
        return None
    server.background_rounds(BACKGROUND_INTERVAL)
    _server = server
    _logger.info("covet-otel: health endpoints at %s/health", server.url)
    return server


def stop() -> None:
    global _server
    server, _server = _server, None
    if server is not None:
        server.stop()


def after_fork_in_child() -> None:
    """A forked child (a pre-fork worker) does not serve: the serving thread stayed in the
    parent, and the inherited socket is the parent's to answer on."""
    global _server
    server, _server = _server, None
    if server is not None:
        server.forget_in_child()


__all__ = ["AutoHealthRegistry", "remember_redis_client", "start", "stop"]
