"""asyncpg pool state: names, sizes read at collection time, acquire waits, leaks, pool health.

`asyncpg.Pool` has `__slots__` and no `__weakref__`, so a pool cannot be weakly referenced or
tagged. Its connection holders can: a pool's state keeps a weak reference to its first holder
(which references the pool and lives exactly as long as it), and is dropped when that holder is
collected. Nothing here keeps a pool alive.

Leak detection stores, per acquired holder, the acquire time and the caller's file:line (one
`sys._getframe` walk, no stack capture). The check runs when the leak counter is collected and,
rate-limited, on acquire. A connection counts once, for the first reason found:
- `held_too_long`: acquired longer than COVET_DB_LEAK_SECONDS ago;
- `not_released`: the application holds no reference to the connection proxy any more, so nothing
  can release it. asyncpg itself keeps the proxy alive (holder and connection refer to it), so it is
  never garbage-collected while the pool lives; instead the check compares the proxy's reference
  count with asyncpg's own two references (CPython).
Each logs one warning with the acquire site. Nothing here ever releases or closes a connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import weakref
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
import wrapt

from .. import instruments
from ..settings import current

_logger = logging.getLogger("covet_otel")

ACQUIRE = instruments.histogram("covet_db_pool_acquire_duration_seconds")
TIMEOUTS = instruments.counter("covet_db_pool_acquire_timeouts_total")
LEAKED = instruments.counter("covet_db_connections_leaked_total")
ACTIVE = instruments.gauge("covet_db_connections_active")
IDLE = instruments.gauge("covet_db_connections_idle")
SIZE = instruments.gauge("covet_db_pool_size")
MIN_SIZE = instruments.gauge("covet_db_pool_min_size")
MAX_SIZE = instruments.gauge("covet_db_pool_max_size")
HEALTH = instruments.gauge("covet_db_pool_health_status")

HELD_TOO_LONG = "held_too_long"
NOT_RELEASED = "not_released"
# A leak keeps the pool at "warn" this long after it was counted.
RECENT_LEAK_SECONDS = 300.0
FALLBACK_LABEL = "default"

# Frames in these directories are asyncpg's or ours, not the application's acquire site.
_SKIP_PREFIXES = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for path in (asyncpg.__file__, __file__, wrapt.__file__, asyncio.__file__)
    if path
)
# sys.getrefcount answers "does anyone else still refer to this proxy" only on CPython.
_REFCOUNTS = sys.implementation.name == "cpython"


class Held:
    """One acquired pool connection, as leak detection sees it."""

    __slots__ = ("file", "line", "reported", "since")

    def __init__(self, since: float, file: str, line: int) -> None:
        self.since = since
        self.file = file
        self.line = line
        self.reported = False


class PoolState:
    __slots__ = (
        "__weakref__", "acquired_series", "held", "label", "last_acquire_failed", "last_leak",
        "next_check", "ref",
    )  # fmt: skip

    def __init__(self, label: str, ref: weakref.ref) -> None:
        self.rename(label)
        self.ref = ref
        self.held: dict[int, Held] = {}  # id(holder) -> Held; ids, so the state holds no holder
        self.last_acquire_failed = False
        self.last_leak = 0.0
        self.next_check = 0.0

    def rename(self, label: str) -> None:
        self.label = label
        self.acquired_series = ACQUIRE.series((label, "success"))

    def pool(self) -> Any:
        holder = self.ref()
        return None if holder is None else holder._pool


_states: dict[int, PoolState] = {}  # id(pool) -> state
# Pools named before they were initialised (no holder to refer to yet): kept strongly until then.
_pending_names: dict[int, tuple[Any, str]] = {}


def name_pool(pool: Any, name: str) -> Any:
    """Give `pool` the `pool` label `name` (instead of its database name); returns the pool.

    Safe to call whether or not instrumentation is on, before or after the pool is initialised.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a pool name is a non-empty string")
    name = name.strip()
    state = _states.get(id(pool))
    if state is not None:
        state.rename(name)
    else:
        _pending_names[id(pool)] = (pool, name)
    return pool


def state_for(pool: Any) -> PoolState | None:
    """The pool's state, registering the pool on first sight (None before it is initialised).

    Keyed by id(pool) with no identity check: the entry goes when the pool's first holder is
    collected, which is when the pool is (each refers to the other, asyncpg never drops holders),
    and weakref callbacks run before that memory can hold a new pool.
    """
    state = _states.get(id(pool))
    if state is not None:
        return state
    return _register(pool)


def label_of(pool: Any) -> str:
    state = _states.get(id(pool))
    if state is not None:
        return state.label
    state = _register(pool)
    return state.label if state is not None else _database_of(pool) or FALLBACK_LABEL


def _register(pool: Any) -> PoolState | None:
    holders = getattr(pool, "_holders", None)
    if not holders:
        return None
    key = id(pool)
    pending = _pending_names.pop(key, None)
    if pending is not None and pending[0] is pool:
        label = pending[1]
    else:
        label = _database_of(pool) or FALLBACK_LABEL

    def forget(_ref: weakref.ref, key: int = key) -> None:
        if _states.get(key) is state:
            del _states[key]

    state = PoolState(label, weakref.ref(holders[0], forget))
    _states[key] = state
    return state


def _database_of(pool: Any) -> str | None:
    """The database name from the pool's connect arguments; never user, password or host."""
    kwargs = getattr(pool, "_connect_kwargs", None) or {}
    database = kwargs.get("database")
    if database:
        return str(database)
    args = getattr(pool, "_connect_args", None) or ()
    dsn = args[0] if args else kwargs.get("dsn")
    if isinstance(dsn, str) and "://" in dsn:
        parts = urlsplit(dsn)
        path = unquote(parts.path.lstrip("/"))
        if path:
            return path
        query = parse_qs(parts.query)
        for key in ("dbname", "database"):
            if query.get(key):
                return query[key][0]
    for holder in getattr(pool, "_holders", ()):
        con = getattr(holder, "_con", None)
        params = getattr(con, "_params", None)
        if getattr(params, "database", None):
            return str(params.database)
    return os.environ.get("PGDATABASE") or None


def call_site(depth: int) -> tuple[str, int]:
    """The first frame, `depth` levels up or more, outside asyncpg, asyncio and covet-otel.

    `sys._getframe(n)` creates a frame object for frame n only, where walking `f_back` would
    create one for every frame on the way: a few asyncpg frames sit between acquire and the app.
    """
    try:
        while True:
            frame = sys._getframe(depth + 1)
            filename = frame.f_code.co_filename
            if not filename.startswith(_SKIP_PREFIXES):
                return filename, frame.f_lineno
            depth += 1
    except ValueError:  # ran out of frames
        return "<unknown>", 0


def acquired(pool: Any, holder: Any, waited: float, now: float, depth: int) -> None:
    """Bookkeeping for a successful acquire at `now` (perf_counter); `depth`: frames from the
    caller up to the one that awaited the acquire."""
    state = _states.get(id(pool)) or _register(pool)
    if state is None:
        return
    state.acquired_series.record(waited)
    if state.last_acquire_failed:
        state.last_acquire_failed = False
    file, line = call_site(depth + 1)
    state.held[id(holder)] = Held(now, file, line)
    if now >= state.next_check:
        check_leaks(state, now)


def acquire_failed(pool: Any, waited: float, exc: BaseException) -> None:
    state = state_for(pool)
    label = state.label if state is not None else label_of(pool)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        ACQUIRE.series((label, "timeout")).record(waited)
        TIMEOUTS.series((label,)).add(1)
        return
    ACQUIRE.series((label, "error")).record(waited)
    if state is not None and not isinstance(exc, asyncio.CancelledError):
        state.last_acquire_failed = True


def check_leaks(state: PoolState, now: float) -> None:
    limit = current().db_leak_seconds
    state.next_check = now + min(1.0, limit / 4)
    if not state.held:
        return
    pool = state.pool()
    holders = {id(h): h for h in getattr(pool, "_holders", ())}
    for key, held in list(state.held.items()):
        holder = holders.get(key)
        if held.reported or not _in_use(holder):
            continue
        held_for = now - held.since
        if held_for >= limit:
            reason = HELD_TOO_LONG
        elif _dropped(holder):
            reason = NOT_RELEASED
        else:
            continue
        held.reported = True
        state.last_leak = now
        LEAKED.series((state.label, reason)).add(1)
        if reason == HELD_TOO_LONG:
            _logger.warning(
                "covet_otel: asyncpg pool %r: a connection acquired at %s:%d has been held for %.1f s "
                "(more than COVET_DB_LEAK_SECONDS=%g); covet-otel does not release it",
                state.label, held.file, held.line, held_for, limit,
            )  # fmt: skip
        else:
            _logger.warning(
                "covet_otel: asyncpg pool %r: a connection acquired at %s:%d was dropped without being "
                "released: the application holds no reference to it, so it stays checked out",
                state.label, held.file, held.line,
            )  # fmt: skip


def _in_use(holder: Any) -> bool:
    # A released holder's record stays until its next acquire overwrites it (at most one per
    # holder): cheaper than wrapping every release, and the collector thread never mutates it.
    return holder is not None and holder._in_use is not None


def _dropped(holder: Any) -> bool:
    """True when nobody but asyncpg refers to the holder's proxy: it can never be released."""
    if not _REFCOUNTS or holder is None:
        return False
    proxy = holder._proxy
    if proxy is None:
        return False
    con = getattr(proxy, "_con", None)
    # references: our local, getrefcount's argument, holder._proxy, and con._proxy
    own = 2 + 1 + (con is not None and getattr(con, "_proxy", None) is proxy)
    return sys.getrefcount(proxy) <= own


def check_all_leaks() -> None:
    now = time.perf_counter()
    for state in list(_states.values()):
        check_leaks(state, now)


# --- collection-time figures --------------------------------------------------------------------


def _live_pools() -> Iterator[tuple[PoolState, Any]]:
    for state in list(_states.values()):
        pool = state.pool()
        if pool is not None:
            yield state, pool


def _is_closed(pool: Any) -> bool:
    return bool(getattr(pool, "_closed", False) or getattr(pool, "_closing", False))


def _waiters(pool: Any) -> int:
    queue = getattr(pool, "_queue", None)
    getters = getattr(queue, "_getters", None) or ()
    return sum(1 for waiter in list(getters) if not waiter.done())


def pool_figures(pool: Any, state: PoolState, now: float) -> dict[str, float]:
    holders = list(getattr(pool, "_holders", ()))
    size = sum(1 for h in holders if h._con is not None and not h._con.is_closed())
    active = sum(1 for h in holders if h._in_use is not None)
    idle = sum(1 for h in holders if h._in_use is None and h._con is not None and not h._con.is_closed())
    return {
        "size": size,
        "active": active,
        "idle": idle,
        "min": pool._minsize,
        "max": pool._maxsize,
        "health": _health(pool, state, size, idle, now),
    }


def _health(pool: Any, state: PoolState, size: int, idle: int, now: float) -> float:
    """1 pass, 0.5 warn (exhausted with waiters, or leaking), 0 fail (closed, or nothing can connect)."""
    if _is_closed(pool):
        return 0.0
    if size == 0 and state.last_acquire_failed:
        return 0.0
    if idle == 0 and _waiters(pool) > 0:
        return 0.5
    if state.last_leak and now - state.last_leak < RECENT_LEAK_SECONDS:
        return 0.5
    holders = {id(h): h for h in getattr(pool, "_holders", ())}
    if any(held.reported and _in_use(holders.get(key)) for key, held in list(state.held.items())):
        return 0.5
    return 1.0


def figures_by_label() -> dict[str, dict[str, float]]:
    """Per `pool` label: sizes summed over its open pools, health the worst of them.

    A label whose pools are all closed reports zero sizes and health 0; a closed pool does not
    drag down an open one of the same name (a restart replaces a pool under the same name).
    """
    now = time.perf_counter()
    grouped: dict[str, list[tuple[bool, dict[str, float]]]] = {}
    for state, pool in _live_pools():
        grouped.setdefault(state.label, []).append((_is_closed(pool), pool_figures(pool, state, now)))
    result: dict[str, dict[str, float]] = {}
    for label, entries in grouped.items():
        open_ones = [figs for closed, figs in entries if not closed]
        if not open_ones:
            result[label] = {"size": 0, "active": 0, "idle": 0, "min": 0, "max": 0, "health": 0.0}
            continue
        total = {
            key: float(sum(f[key] for f in open_ones)) for key in ("size", "active", "idle", "min", "max")
        }
        total["health"] = min(f["health"] for f in open_ones)
        result[label] = total
    return result


def _gauge_callback(key: str):  # type: ignore[no-untyped-def]
    def observe() -> Iterator[tuple[tuple[str, ...], float]]:
        try:
            figures = figures_by_label()
        except Exception:
            _logger.debug("covet_otel: reading asyncpg pool state failed", exc_info=True)
            return
        for label, figs in figures.items():
            yield (label,), figs[key]

    return observe


def _counter_callback(counter: Any, reasons: tuple[str, ...], check: bool):  # type: ignore[no-untyped-def]
    # A pool's counters read 0 from its first collection, so that rate() and alerts see the pool
    # before its first timeout or leak. They are reported here rather than created at
    # registration: a pool is usually named (name_pool) just after asyncpg registered it.
    def observe() -> Iterator[tuple[tuple[str, ...], float]]:
        if check:
            # a scrape then shows every leak up to that moment
            try:
                check_all_leaks()
            except Exception:
                _logger.debug("covet_otel: asyncpg leak check failed", exc_info=True)
        values = {labels: series.value for labels, series in counter.items()}
        for state, _pool in _live_pools():
            for reason in reasons:
                key = (state.label, reason) if reason else (state.label,)
                values.setdefault(key, 0.0)
        yield from values.items()

    return observe


_CALLBACKS = (
    (ACTIVE, _gauge_callback("active")),
    (IDLE, _gauge_callback("idle")),
    (SIZE, _gauge_callback("size")),
    (MIN_SIZE, _gauge_callback("min")),
    (MAX_SIZE, _gauge_callback("max")),
    (HEALTH, _gauge_callback("health")),
    (LEAKED, _counter_callback(LEAKED, (HELD_TOO_LONG, NOT_RELEASED), check=True)),
    (TIMEOUTS, _counter_callback(TIMEOUTS, ("",), check=False)),
)


def register_callbacks() -> None:
    for instrument, callback in _CALLBACKS:
        if callback not in instrument.callbacks:
            instrument.observe(callback)


def unregister_callbacks() -> None:
    for instrument, callback in _CALLBACKS:
        instrument.remove_callback(callback)
