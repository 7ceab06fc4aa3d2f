"""Health checks: what one check is, what it returns, and the built-in ones.

A check is a sync or async callable. It returns a `CheckResult`, a status string ("pass", "warn",
"fail"), a bool (True = pass), or None (pass); raising means fail. Timeouts, threads, caching and
metrics are the runner's business (`runner.py`), so the checks here stay plain.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..settings import HEALTH_TIMEOUT_RANGE

PASS = "pass"
WARN = "warn"
FAIL = "fail"
STATUSES = (PASS, WARN, FAIL)
# covet_health_check_status values (documented in the catalogue): 1 pass, 0.5 warn, 0 fail
STATUS_VALUE = {PASS: 1.0, WARN: 0.5, FAIL: 0.0}
_RANK = {PASS: 0, WARN: 1, FAIL: 2}

CheckFunc = Callable[[], Any]

# Upper bounds of per-check timeouts and intervals: the event loop and threading overflow on far
# larger timeouts, and a probe is long gone after minutes. The timeout bound is the setting's.
MAX_TIMEOUT = HEALTH_TIMEOUT_RANGE[1]
MAX_INTERVAL = 86_400.0


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check run.

    `output` and `component_id` are details: they are only shown to callers with the token.
    """

    status: str = PASS
    observed_value: float | int | str | None = None
    observed_unit: str | None = None
    output: str | None = None
    component_id: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"health status must be one of {STATUSES}, not {self.status!r}")


def worst(statuses: Iterable[str]) -> str:
    result = PASS
    for status in statuses:
        if _RANK[status] > _RANK[result]:
            result = status
    return result


def to_result(value: Any) -> CheckResult:
    """What a custom check returned, as a CheckResult."""
    if isinstance(value, CheckResult):
        return value
    if value is None or value is True:
        return CheckResult(PASS)
    if value is False:
        return CheckResult(FAIL)
    if isinstance(value, str) and value in STATUSES:
        return CheckResult(value)
    raise TypeError(
        f"a health check returns a CheckResult, a status string, a bool or None; got {type(value).__name__}"
    )


@dataclass
class Check:
    """One registered check. `name` is the response key, "component:measurement".

    `critical` checks decide /health/ready and /health/startup; a failing non-critical check only
    makes the overall status `warn`. `timeout` (seconds) defaults to COVET_HEALTH_TIMEOUT_SECONDS.
    `interval` (seconds), when set, reuses the last result for that long even when the response
    cache has expired (for checks too expensive to run every few seconds).
    """

    name: str
    func: CheckFunc
    critical: bool = True
    timeout: float | None = None
    interval: float | None = None
    component_type: str = "component"

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a health check needs a non-empty name")
        for attr, high in (("timeout", MAX_TIMEOUT), ("interval", MAX_INTERVAL)):
            value = getattr(self, attr)
            if value is not None and not 0 < value <= high:
                raise ValueError(
                    f"health check {self.name}: {attr} must be a number of seconds, more than 0 and "
                    f"at most {high:g}; got {value!r}"
                )
        self.is_async = _is_async(self.func)


def _is_async(func: Any) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - instances with an async __call__
    return inspect.iscoroutinefunction(call)


def _resolve(target: Any) -> Any:
    """Targets may be given as zero-argument callables, read at every run (a pool opened later)."""
    if callable(target) and not hasattr(target, "acquire") and not hasattr(target, "ping"):
        return target()
    return target


def in_thread(func: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
    """Run `func` on a new daemon thread; the future holds its outcome.

    Not a ThreadPoolExecutor: its threads are joined at interpreter exit, so one check hung for
    good would keep the process from exiting. One thread per sync check run (once per cache TTL
    at most) costs little, and the runner never starts a check whose previous run is still going.
    """
    future: concurrent.futures.Future = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(func(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="covet-health-check", daemon=True).start()
    return future


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


# --------------------------------------------------------------------------------------------------
# database
# --------------------------------------------------------------------------------------------------


def database_check(
    pool: Any = None,
    *,
    dsn: str | None = None,
    name: str = "database:responseTime",
    query: str = "SELECT 1",
    critical: bool = True,
    timeout: float | None = None,
    interval: float | None = None,
) -> Check:
    """`SELECT 1` through an asyncpg pool (or a zero-argument callable returning one) or a DSN.

    observedValue is the round trip in milliseconds (pool: acquire + query; DSN: connect + query).
    When the runner's timeout cancels the query, the connection is terminated rather than returned
    to the pool mid-query: a frozen server would otherwise keep that pool slot busy, and the next
    round would wait behind it.
    """
    if (pool is None) == (dsn is None):
        raise ValueError("database_check needs exactly one of pool= or dsn=")

    async def check() -> CheckResult:
        started = time.perf_counter()
        if dsn is not None:
            await _select_via_dsn(dsn, query)
        else:
            target = _resolve(pool)
            if target is None:
                return CheckResult(FAIL, output="the database pool is not open")
            await _on_loop_of(target, _select_via_pool(target, query))
        return CheckResult(PASS, _ms(time.perf_counter() - started), "ms")

    return Check(name, check, critical, timeout, interval, "datastore")


async def _select_via_pool(pool: Any, query: str) -> None:
    conn = await pool.acquire()
    try:
        await conn.fetchval(query)
    except BaseException:
        # cancelled (timeout) or broken: never hand a connection with a query in flight back
        conn.terminate()
        raise
    finally:
        await pool.release(conn)


async def _select_via_dsn(dsn: str, query: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.fetchval(query)
    finally:
        conn.terminate()  # no goodbye round trip: it would hang on a frozen server


async def _on_loop_of(target: Any, coro: Awaitable[Any]) -> Any:
    """Run `coro` on the loop that owns `target` (asyncpg pools are bound to the loop that created
    them; the WSGI app and the standalone server run checks on a loop of their own)."""
    owner = getattr(target, "_loop", None)  # asyncpg.Pool keeps its loop here
    running = asyncio.get_running_loop()
    if owner is None or owner is running or owner.is_closed():
        return await coro
    future = asyncio.run_coroutine_threadsafe(coro, owner)  # type: ignore[arg-type]
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        future.cancel()  # cancels the task on the owner loop, which terminates its connection
        raise


# --------------------------------------------------------------------------------------------------
# redis
# --------------------------------------------------------------------------------------------------


def redis_check(
    client: Any = None,
    *,
    url: str | None = None,
    name: str = "redis:responseTime",
    critical: bool = True,
    timeout: float | None = None,
    interval: float | None = None,
) -> Check:
    """`PING` through a redis-py client (sync or asyncio, or a callable returning one) or a URL.

    observedValue is the round trip in milliseconds. A sync client runs in the runner's thread;
    a URL gets a sync client of its own (thread-safe, so it works from any loop or thread).
    """
    if (client is None) == (url is None):
        raise ValueError("redis_check needs exactly one of client= or url=")
    own: list[Any] = []
    pending: list[concurrent.futures.Future] = []

    def sync_client() -> Any:
        if not own:
            import redis

            seconds = timeout or 2.0
            own.append(redis.Redis.from_url(url, socket_timeout=seconds, socket_connect_timeout=seconds))
        return own[0]

    async def check() -> CheckResult:
        started = time.perf_counter()
        target = sync_client() if url is not None else _resolve(client)
        if target is None:
            return CheckResult(FAIL, output="the Redis client is not open")
        if _is_asyncio_client(target):
            reply = await target.ping()
        else:
            # a cancelled await leaves the thread running: never stack a second PING behind it
            if pending and not pending[0].done():
                return CheckResult(FAIL, output="the previous PING has not returned yet")
            pending[:] = [in_thread(target.ping)]
            reply = await asyncio.wrap_future(pending[0])
        if reply is not True and reply not in (b"PONG", "PONG"):
            return CheckResult(FAIL, output=f"unexpected PING reply {reply!r}")
        return CheckResult(PASS, _ms(time.perf_counter() - started), "ms")

    return Check(name, check, critical, timeout, interval, "datastore")


def _is_asyncio_client(client: Any) -> bool:
    # redis.asyncio's ping() is a plain method returning a coroutine, so look at the class
    if inspect.iscoroutinefunction(client.ping):
        return True
    try:
        from redis import asyncio as aioredis
    except ImportError:
        return False
    return isinstance(client, (aioredis.Redis, getattr(aioredis, "RedisCluster", aioredis.Redis)))


# --------------------------------------------------------------------------------------------------
# system
# --------------------------------------------------------------------------------------------------


def _threshold_status(percent: float, warn_at: float, fail_at: float) -> str:
    if percent >= fail_at:
        return FAIL
    if percent >= warn_at:
        return WARN
    return PASS


def _usage_check(
    name: str,
    measure: Callable[[], float],
    describe: str,
    component_id: str | None,
    warn_at: float,
    fail_at: float,
    critical: bool,
    timeout: float | None,
    interval: float | None,
) -> Check:
    def check() -> CheckResult:
        used = measure()
        status = _threshold_status(used, warn_at, fail_at)
        return CheckResult(status, used, "%", describe % used, component_id)

    return Check(name, check, critical, timeout, interval, "system")


def disk_check(
    path: str = "/",
    *,
    name: str = "disk:utilization",
    warn_at: float = 90.0,
    fail_at: float = 95.0,
    critical: bool = False,
    timeout: float | None = None,
    interval: float | None = None,
) -> Check:
    """Used space of the filesystem holding `path`, in percent (warn/fail thresholds in percent)."""
    import psutil

    def measure() -> float:
        return psutil.disk_usage(path).percent

    description = f"%.1f%% of {path.replace('%', '%%')} used"
    return _usage_check(name, measure, description, path, warn_at, fail_at, critical, timeout, interval)


def memory_check(
    *,
    name: str = "memory:utilization",
    warn_at: float = 90.0,
    fail_at: float = 95.0,
    critical: bool = False,
    timeout: float | None = None,
    interval: float | None = None,
) -> Check:
    """System memory in use (total minus available), in percent."""
    import psutil

    def measure() -> float:
        return psutil.virtual_memory().percent

    description = "%.1f%% of memory in use"
    return _usage_check(name, measure, description, None, warn_at, fail_at, critical, timeout, interval)


# --------------------------------------------------------------------------------------------------
# signals from the metric engine
# --------------------------------------------------------------------------------------------------


class _Window:
    """Samples of cumulative figures over time, for "how much did it grow in the last N seconds".

    Fed by check runs (once per cache TTL at most), so it stays small; a figure that went down
    means the counters were reset, and the history restarts.
    """

    def __init__(self, seconds: float, first: tuple[float, ...]) -> None:
        self.seconds = seconds
        self.samples: collections.deque[tuple[float, tuple[float, ...]]] = collections.deque(maxlen=4096)
        self.samples.append((time.monotonic(), first))

    def add(self, values: tuple[float, ...]) -> tuple[float, ...]:
        """Record `values` now; return their growth since the start of the window."""
        now = time.monotonic()
        last = self.samples[-1][1]
        if any(v < old for v, old in zip(values, last)):
            self.samples.clear()
            self.samples.append((now, tuple(0.0 for _ in values)))
        self.samples.append((now, values))
        horizon = now - self.seconds
        # keep one sample at or before the horizon as the base of the window
        while len(self.samples) > 2 and self.samples[1][0] <= horizon:
            self.samples.popleft()
        base = self.samples[0][1]
        return tuple(v - b for v, b in zip(values, base))


def _http_totals() -> tuple[float, float]:
    from covet_otel import instruments

    total = errors = 0.0
    for labels, series in instruments.counter("covet_http_requests_total").items():
        total += series.value
        if labels[2].startswith("5"):
            errors += series.value
    return total, errors


def error_rate_check(
    *,
    name: str = "http:errorRate",
    window_seconds: float = 60.0,
    warn_at: float = 5.0,
    fail_at: float = 20.0,
    min_requests: int = 10,
    critical: bool = False,
    timeout: float | None = None,
    interval: float | None = None,
) -> Check:
    """Share of HTTP responses with a 5xx status over the last `window_seconds`, in percent.

    Reads covet_http_requests_total from the metric engine (the HTTP middleware counts); with fewer
    than `min_requests` requests in the window the check passes (too few to judge). Non-critical by
    default: taking every replica out of the load balancer because of errors makes them worse.
    """
    window = _Window(window_seconds, _http_totals())

    def check() -> CheckResult:
        total, errors = window.add(_http_totals())
        percent = round(100.0 * errors / total, 3) if total else 0.0
        status = PASS if total < min_requests else _threshold_status(percent, warn_at, fail_at)
        output = f"{errors:.0f} of {total:.0f} requests failed with 5xx in the last {window_seconds:g} s"
        return CheckResult(status, percent, "%", output)

    return Check(name, check, critical, timeout, interval, "component")


def _leaks(pool_label: str | None) -> float:
    from covet_otel import instruments

    return sum(
        series.value
        for labels, series in instruments.counter("covet_db_connections_leaked_total").items()
        if pool_label is None or labels[0] == pool_label
    )


def pool_check(
    pool: Any,
    *,
    name: str = "database:connections",
    pool_label: str | None = None,
    warn_at: float = 90.0,
    fail_at: float | None = None,
    leak_window_seconds: float = 300.0,
    critical: bool = False,
    timeout: float | None = None,
    interval: float | None = None,
) -> Check:
    """An asyncpg pool's utilisation (connections in use / max size, percent) and recent leaks.

    warn at `warn_at` percent (100 = exhausted); fail at `fail_at` when set (off by default: a
    momentarily busy pool is not a reason to restart or unroute a replica). A connection counted in
    covet_db_connections_leaked_total (for `pool_label`, or any pool) within the last
    `leak_window_seconds` gives warn. `pool` may be a callable returning the pool.
    """
    window = _Window(leak_window_seconds, (_leaks(pool_label),))

    def check() -> CheckResult:
        (leaked,) = window.add((_leaks(pool_label),))
        target = _resolve(pool)
        if target is None:
            return CheckResult(FAIL, output="the database pool is not open")
        size, idle, maximum = target.get_size(), target.get_idle_size(), target.get_max_size()
        in_use = size - idle
        percent = round(100.0 * in_use / maximum, 1) if maximum else 100.0
        status = PASS
        if fail_at is not None and percent >= fail_at:
            status = FAIL
        elif percent >= warn_at or leaked > 0:
            status = WARN
        output = (
            f"{in_use} of {maximum} connections in use; {leaked:.0f} leaked in the last "
            f"{leak_window_seconds:g} s"
        )
        return CheckResult(status, percent, "%", output, component_id=pool_label)

    return Check(name, check, critical, timeout, interval, "datastore")
