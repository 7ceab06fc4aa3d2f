"""asyncpg query, pool and leak metrics (the database group of the catalogue).

Loaded by `opentelemetry-instrument` through the `covet_asyncpg` entry point, or by hand:

    from covet_otel.instrumentation.asyncpg import AsyncpgMetricsInstrumentor, name_pool
    AsyncpgMetricsInstrumentor().instrument()
    pool = name_pool(await asyncpg.create_pool(dsn), "orders")

What is wrapped, and why there:
- `Connection.execute/executemany/fetch/fetchrow/fetchval/fetchmany`: the public statement API. A
  pool's connection proxy calls these same class attributes, so pooled and direct connections go
  through one wrapper. The upstream span instrumentor wraps them too; each wrapper does its own
  job, so with both on every statement gets one span and is counted once. Ours goes innermost
  (see `_wrap`), so either instrumentor can be switched off first.
- `Connection.copy_*` (one COPY each), `PreparedStatement.fetch/fetchrow/fetchval/fetchmany/
  executemany`, and the private round trip that opens a cursor (`BaseCursor._bind_exec`/`_bind`):
  a cursor is one statement however many rows it yields, unlike upstream's span per row.
- Statements asyncpg issues for itself are not counted: the reset query a pool sends on every
  release (recognised by identity: it is the connection's cached `_reset_query` string, cheaper
  than wrapping `Connection.reset`) and the helper queries inside `copy_from_query`. A ROLLBACK that
  the release sends because the app left a transaction open is counted: it is the app's.
- `Pool._initialize`, `Pool._acquire`: pool registration, acquire waits and leak bookkeeping (see
  asyncpg_pools). Releases need no wrapper: the leak check asks each holder whether it is in use.

The hot path is one wrapper call, two `perf_counter` reads, a cached SQL-verb lookup, one dict
lookup for the series and one histogram update; no OTel SDK call (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from time import perf_counter
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from .. import instruments
from ..settings import current
from .asyncpg_sql import _cache as _verbs
from .asyncpg_sql import operation

__all__ = ["AsyncpgMetricsInstrumentor", "name_pool", "uncounted"]

_logger = logging.getLogger("covet_otel")

QUERY = instruments.histogram("covet_db_query_duration_seconds")
ERRORS = instruments.counter("covet_db_query_errors_total")
SLOW = instruments.counter("covet_db_slow_queries_total")

FALLBACK_LABEL = "default"
# Set while asyncpg runs statements on its own behalf (copy_from_query's helpers), or inside
# uncounted().
_internal: ContextVar[bool] = ContextVar("covet_otel_asyncpg_internal", default=False)

_slow_seconds = 1.0
_pools: Any = None  # the asyncpg_pools module, imported by _instrument (it needs asyncpg itself)
_pool_states: dict = {}  # its id(pool) -> state dict, read on the statement path
# (pool label, operation) -> (success histogram series, slow counter series)
_hot: dict[tuple[str, str], tuple[Any, Any]] = {}
_HOT_MAX = 4096
_reported_failure = False
_patched_methods: list[tuple[Any, str]] = []


def name_pool(pool: Any, name: str) -> Any:
    """Label `pool`'s metrics `pool="<name>"` instead of its database name; returns the pool."""
    from . import asyncpg_pools

    return asyncpg_pools.name_pool(pool, name)


@contextmanager
def uncounted() -> Iterator[None]:
    """Statements run inside this block (in this task) are not counted: for probes and other
    traffic that is not the application's own, such as a health check's `SELECT 1`."""
    token = _internal.set(True)
    try:
        yield
    finally:
        _internal.reset(token)


def _instrumentation_failed() -> None:
    # Our own bug must never reach the application; say so once, loudly, then quietly.
    global _reported_failure
    if not _reported_failure:
        _reported_failure = True
        _logger.warning("covet_otel: asyncpg instrumentation error (metrics may be missing)", exc_info=True)
    else:
        _logger.debug("covet_otel: asyncpg instrumentation error", exc_info=True)


def _label(conn: Any) -> str:
    proxy = conn._proxy
    if proxy is not None:
        return _pools.label_of(proxy._holder._pool)
    return conn._params.database or FALLBACK_LABEL


def _entry(key: tuple[str, str]) -> tuple[Any, Any]:
    entry = (QUERY.series((*key, "success")), SLOW.series(key))
    if len(_hot) < _HOT_MAX:
        _hot[key] = entry
    return entry


def _succeeded(conn: Any, op: str, elapsed: float) -> None:
    key = (_label(conn), op)
    entry = _hot.get(key) or _entry(key)
    entry[0].record(elapsed)
    if elapsed >= _slow_seconds:
        entry[1].add(1)


def _failed(conn: Any, op: str, elapsed: float, exc: BaseException) -> None:
    label = _label(conn)
    # a cancelled task is the application giving up (its own deadline, an aborted request): timed,
    # not a database error
    cancelled = isinstance(exc, asyncio.CancelledError)
    QUERY.series((label, op, "cancelled" if cancelled else "error")).record(elapsed)
    if not cancelled:
        sqlstate = getattr(exc, "sqlstate", None)
        sqlstate_class = sqlstate[:2] if isinstance(sqlstate, str) and len(sqlstate) >= 2 else "none"
        ERRORS.series((label, op, sqlstate_class)).add(1)
    if elapsed >= _slow_seconds:
        SLOW.series((label, op)).add(1)


def _query_text(args: tuple, kwargs: dict) -> Any:
    if args:
        return args[0]
    return kwargs.get("query", kwargs.get("command"))


# Each patched method is a plain `async def` that calls the original function, not a wrapt
# wrapper: asyncpg's pool connection proxy calls `Connection.<method>` through the class, which
# wrapt serves on its slowest path (binding at each call), and a plain function is one Python
# call either way. `_ORIGINAL` on the function marks it ours and keeps what it replaced.
_ORIGINAL = "_covet_original"
Method = Callable[..., Any]


def _connection_statement(original: Method) -> Method:
    """Connection.execute/fetch*/executemany: the hot path, kept flat on purpose."""

    async def statement(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _internal.get():
            return await original(self, *args, **kwargs)
        start = perf_counter()
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            elapsed = perf_counter() - start
            try:
                query = _query_text(args, kwargs)
                if query is not getattr(self, "_reset_query", None):
                    _failed(self, operation(query), elapsed, exc)
            except Exception:
                _instrumentation_failed()
            raise
        elapsed = perf_counter() - start
        try:
            query = args[0] if args else _query_text(args, kwargs)
            if query is not getattr(self, "_reset_query", None):
                # _succeeded(self, operation(query), elapsed), inlined: each call saved is ~5 %
                # of what a statement adds
                proxy = self._proxy
                if proxy is None:
                    label = self._params.database or FALLBACK_LABEL
                else:
                    state = _pool_states.get(id(proxy._holder._pool))
                    label = state.label if state is not None else _label(self)
                op = (type(query) is str and _verbs.get(query)) or operation(query)
                key = (label, op)
                entry = _hot.get(key) or _entry(key)
                entry[0].record(elapsed)
                if elapsed >= _slow_seconds:
                    entry[1].add(1)
        except Exception:
            _instrumentation_failed()
        return result

    return statement


Target = Callable[[Any], tuple[Any, str]]


def _statement_wrapper(target: Target, *, guard: bool = False, errors_only: bool = False) -> Callable:
    """A patch for the less hot statement paths; `target(instance)` gives (connection, verb).

    `guard` hides the statements the wrapped call runs itself; `errors_only` counts failures only
    (a cursor's later batches are part of the statement its opening round trip counted).
    """

    def patch(original: Method) -> Method:
        async def statement(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _internal.get():
                return await original(self, *args, **kwargs)
            token = _internal.set(True) if guard else None
            start = perf_counter()
            try:
                result = await original(self, *args, **kwargs)
            except BaseException as exc:
                elapsed = perf_counter() - start
                try:
                    conn, op = target(self)
                    _failed(conn, op, elapsed, exc)
                except Exception:
                    _instrumentation_failed()
                raise
            finally:
                if token is not None:
                    _internal.reset(token)
            if not errors_only:
                elapsed = perf_counter() - start
                try:
                    conn, op = target(self)
                    _succeeded(conn, op, elapsed)
                except Exception:
                    _instrumentation_failed()
            return result

        return statement

    return patch


def _copy_target(conn: Any) -> tuple[Any, str]:
    return conn, "COPY"


def _prepared_target(stmt: Any) -> tuple[Any, str]:
    return stmt._connection, operation(stmt._query)


def _cursor_target(cursor: Any) -> tuple[Any, str]:
    query = cursor._query
    if query is None and cursor._state is not None:
        query = cursor._state.query
    return cursor._connection, operation(query)


def _pool_initialize(original: Method) -> Method:
    async def initialize(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        finally:
            try:
                _pools.state_for(self)
            except Exception:
                _instrumentation_failed()

    return initialize


def _pool_acquire(original: Method) -> Method:
    async def acquire(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = perf_counter()
        try:
            proxy = await original(self, *args, **kwargs)
        except BaseException as exc:
            try:
                _pools.acquire_failed(self, perf_counter() - start, exc)
            except Exception:
                _instrumentation_failed()
            raise
        try:
            # from the frame that awaited this coroutine (Pool.acquire's context manager or the app)
            now = perf_counter()
            _pools.acquired(self, proxy._holder, now - start, now, 1)
        except Exception:
            _instrumentation_failed()
        return proxy

    return acquire


_CONNECTION_STATEMENTS = ("execute", "executemany", "fetch", "fetchrow", "fetchval", "fetchmany")
_COPY_METHODS = ("copy_from_table", "copy_to_table", "copy_records_to_table")
_PREPARED_METHODS = ("fetch", "fetchrow", "fetchval", "fetchmany", "executemany")
Patch = Callable[[Method], Method]


def _targets() -> list[tuple[Any, str, Patch]]:
    import asyncpg.connection
    import asyncpg.cursor
    import asyncpg.pool
    import asyncpg.prepared_stmt

    connection = asyncpg.connection.Connection
    prepared = asyncpg.prepared_stmt.PreparedStatement
    cursor = asyncpg.cursor.BaseCursor
    pool = asyncpg.pool.Pool
    copy = _statement_wrapper(_copy_target)
    prepared_wrapper = _statement_wrapper(_prepared_target)
    cursor_open = _statement_wrapper(_cursor_target)
    targets: list[tuple[Any, str, Patch]] = [
        (connection, m, _connection_statement) for m in _CONNECTION_STATEMENTS
    ]
    targets += [(connection, m, copy) for m in _COPY_METHODS]
    targets += [
        (connection, "copy_from_query", _statement_wrapper(_copy_target, guard=True)),
        (cursor, "_bind_exec", cursor_open),
        (cursor, "_bind", cursor_open),
        (cursor, "_exec", _statement_wrapper(_cursor_target, errors_only=True)),
        (pool, "_initialize", _pool_initialize),
        (pool, "_acquire", _pool_acquire),
    ]
    targets += [(prepared, m, prepared_wrapper) for m in _PREPARED_METHODS]
    # Methods an older asyncpg lacks (fetchmany: 0.30) are skipped rather than failing.
    return [(owner, name, patch) for owner, name, patch in targets if name in owner.__dict__]


def _is_wrapt(attr: Any) -> bool:
    # every wrapt function wrapper (wrapt 1 and 2) has _self_wrapper; plain functions do not
    return hasattr(attr, "_self_wrapper")


def _ours(attr: Any) -> bool:
    # asked only of non-wrapt objects: a wrapt proxy would answer for the function it wraps
    return callable(attr) and _ORIGINAL in getattr(attr, "__dict__", {})


def _patched(original: Method, patch: Patch) -> Method:
    method = patch(original)
    functools.update_wrapper(method, original)
    setattr(method, _ORIGINAL, original)
    return method


def _wrap(owner: Any, name: str, patch: Patch) -> None:
    """Patch `owner.name`, beneath any wrapper already there (the upstream span instrumentor's).

    Innermost, our timing leaves out span work, and the upstream `unwrap`, which removes whatever
    wrapper is outermost, takes off its own wrapper and never ours, in whichever order the two
    instrumentors are switched on and off.
    """
    parent = owner.__dict__.get(name)
    if not _is_wrapt(parent):
        if not _ours(parent):
            setattr(owner, name, _patched(parent, patch))
        return
    while _is_wrapt(parent.__wrapped__):
        parent = parent.__wrapped__
    if not _ours(parent.__wrapped__):
        parent.__wrapped__ = _patched(parent.__wrapped__, patch)


def _unwrap(owner: Any, name: str) -> None:
    """Remove our patch from `owner.name` even when another wrapper was stacked on top of it."""
    parent = None
    current_attr = owner.__dict__.get(name)
    while _is_wrapt(current_attr):
        parent, current_attr = current_attr, current_attr.__wrapped__
    if not _ours(current_attr):
        return
    original = getattr(current_attr, _ORIGINAL)
    if parent is None:
        setattr(owner, name, original)
    else:
        parent.__wrapped__ = original


class AsyncpgMetricsInstrumentor(BaseInstrumentor):
    """covet_db_* query, pool and leak metrics for asyncpg; metrics only, no spans."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("asyncpg >= 0.28.0",)

    def _instrument(self, **kwargs: Any) -> None:
        global _slow_seconds, _pools, _pool_states
        settings = current()
        if not settings.enabled:
            return
        _slow_seconds = settings.db_slow_query_seconds
        from . import asyncpg_pools

        _pools = asyncpg_pools
        _pool_states = asyncpg_pools._states
        patched = []
        for owner, name, patch in _targets():
            _wrap(owner, name, patch)
            patched.append((owner, name))
        _patched_methods[:] = patched
        asyncpg_pools.register_callbacks()

    def _uninstrument(self, **kwargs: Any) -> None:
        from . import asyncpg_pools

        for owner, name in reversed(_patched_methods):
            _unwrap(owner, name)
        _patched_methods.clear()
        asyncpg_pools.unregister_callbacks()
        _hot.clear()
