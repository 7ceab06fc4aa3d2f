"""Running checks: concurrently, each under its own timeout, cached for a TTL with single flight.

A *round* runs every registered check at once and is reused by every endpoint until it is older
than the cache TTL (COVET_HEALTH_CACHE_SECONDS), so a burst of probes costs one round. The round
in progress is shared: a probe arriving meanwhile waits for it instead of starting another.

A check that outlives its timeout is reported as `fail` at the timeout; the runner does not wait
for it to unwind (asyncio.wait_for would: a cancelled asyncpg query can wait for its cancel
request on a frozen server). Until that run ends, later rounds report the check as failing
without starting it again, so a hung dependency holds at most one connection or thread per check.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from ..settings import HEALTH_CACHE_RANGE
from .checks import (
    FAIL,
    MAX_TIMEOUT,
    PASS,
    STATUS_VALUE,
    WARN,
    Check,
    CheckFunc,
    CheckResult,
    in_thread,
    to_result,
)
from .format import ALL, HEADERS, LIVE, LIVE_BODY, READY, STARTUP, http_status, render


@dataclass(frozen=True)
class CheckRun:
    """One check's result in a round."""

    name: str
    result: CheckResult
    critical: bool
    component_type: str
    time: str  # ISO 8601, UTC, when the run started
    duration: float  # seconds
    finished: float  # time.monotonic()


class Round:
    """The results of one round and, lazily, the response bodies built from them."""

    __slots__ = ("_responses", "finished", "runs")

    def __init__(self, runs: tuple[CheckRun, ...], finished: float) -> None:
        self.runs = runs
        self.finished = finished
        self._responses: dict[tuple[str, bool], tuple[int, bytes]] = {}

    def status(self, endpoint: str = ALL) -> str:
        """Overall status: a failing critical check fails, a failing non-critical one warns."""
        status = PASS
        for run in self.runs:
            if endpoint != ALL and not run.critical:
                continue
            current = run.result.status
            if current == FAIL and run.critical:
                return FAIL
            if current != PASS:
                status = WARN
        return status

    def response(self, endpoint: str, detailed: bool) -> tuple[int, bytes]:
        key = (endpoint, detailed)
        found = self._responses.get(key)
        if found is None:
            status = self.status(endpoint)
            runs = self.runs if endpoint == ALL else tuple(r for r in self.runs if r.critical)
            found = (http_status(status), render(status, runs, detailed))
            self._responses[key] = found
        return found


@dataclass
class _State:
    """Per check: its last run, a run that timed out and is still going, its metric series."""

    last: CheckRun | None = None
    stuck: Any = None  # asyncio.Task or concurrent.futures.Future
    series: tuple[Any, Any] | None = None


@dataclass
class _Pending:
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    started: float = field(default_factory=time.monotonic)


class _LoopThread:
    """An event loop of our own, for callers without one (WSGI, the standalone server)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self.loop.run_forever, name="covet-health-loop", daemon=True)
        thread.start()


_loop_thread: _LoopThread | None = None
_loop_thread_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop_thread
    with _loop_thread_lock:
        if _loop_thread is None or _loop_thread.loop.is_closed():
            _loop_thread = _LoopThread()
        return _loop_thread.loop


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _forget(future: Any) -> None:
    # a timed-out run may still end with an exception: retrieve it so asyncio does not log it
    if not future.cancelled():
        future.exception()


class HealthRegistry:
    """A set of checks and the cached results of running them.

    `cache_seconds` and `timeout` default to COVET_HEALTH_CACHE_SECONDS and
    COVET_HEALTH_TIMEOUT_SECONDS (read when used, so settings loaded later apply).
    With `wait_for_startup=True`, /health/startup fails until `mark_started()` is called; either
    way it passes only once a round has no failing critical check, and then stays passed.
    Async checks run on the loop of the ASGI server that asks; sync callers (WSGI, the standalone
    server) use `loop` when given and running, else a private loop thread. asyncpg pools are
    always queried on their own loop.
    """

    def __init__(
        self,
        *,
        cache_seconds: float | None = None,
        timeout: float | None = None,
        wait_for_startup: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        for what, value, high in (
            ("cache_seconds", cache_seconds, HEALTH_CACHE_RANGE[1]),
            ("timeout", timeout, MAX_TIMEOUT),
        ):
            if value is not None and not 0 < value <= high:
                raise ValueError(
                    f"HealthRegistry {what} must be more than 0 and at most {high:g} seconds; got {value!r}"
                )
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._started = not wait_for_startup
        self._startup_passed = False
        self.loop = loop
        self._tracer = trace.get_tracer("covet_otel.health", tracer_provider=tracer_provider)
        self._checks: dict[str, Check] = {}
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._round: Round | None = None
        self._pending: _Pending | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- registration ---------------------------------------------------------------------------

    def add(self, check: Check) -> Check:
        """Register a Check (replacing one of the same name)."""
        with self._lock:
            self._checks[check.name] = check
            self._states[check.name] = _State()
            self._round = None
        return check

    def register(
        self,
        name: str,
        func: CheckFunc,
        *,
        critical: bool = True,
        timeout: float | None = None,
        interval: float | None = None,
        component_type: str = "component",
    ) -> Check:
        """Register a sync or async callable as the check `name` ("component:measurement")."""
        return self.add(Check(name, func, critical, timeout, interval, component_type))

    def check(self, name: str, **options: Any) -> Callable[[CheckFunc], CheckFunc]:
        """Decorator form of `register`."""

        def decorate(func: CheckFunc) -> CheckFunc:
            self.register(name, func, **options)
            return func

        return decorate

    def remove(self, name: str) -> None:
        with self._lock:
            self._checks.pop(name, None)
            self._states.pop(name, None)
            self._round = None

    @property
    def checks(self) -> list[Check]:
        return list(self._checks.values())

    def mark_started(self) -> None:
        """Start-up has finished (only needed with wait_for_startup=True)."""
        self._started = True

    @property
    def cache_seconds(self) -> float:
        if self._cache_seconds is not None:
            return self._cache_seconds
        from covet_otel.settings import current

        return current().health_cache_seconds

    def timeout_for(self, check: Check) -> float:
        if check.timeout is not None:
            return check.timeout
        if self._timeout is not None:
            return self._timeout
        from covet_otel.settings import current

        return current().health_timeout_seconds

    # -- responses --------------------------------------------------------------------------------

    async def response(self, endpoint: str, detailed: bool = False) -> tuple[int, bytes]:
        """(HTTP status, body) for an endpoint, from the cached round or a new one."""
        answer = self._without_round(endpoint, detailed)
        if answer is None:
            try:
                answer = self._answer(await self.results(), endpoint, detailed)
            except Exception:
                answer = self._failed_response(detailed)
        return answer

    def response_sync(self, endpoint: str, detailed: bool = False) -> tuple[int, bytes]:
        """`response` for callers without an event loop (WSGI, the standalone server)."""
        answer = self._without_round(endpoint, detailed)
        if answer is None:
            try:
                answer = self._answer(self.results_sync(), endpoint, detailed)
            except Exception:
                answer = self._failed_response(detailed)
        return answer

    def immediate(self, endpoint: str, detailed: bool = False) -> tuple[int, bytes] | None:
        """The answer when it needs no round (liveness; start-up before or after), else None."""
        return self._without_round(endpoint, detailed)

    def sync_loop(self) -> asyncio.AbstractEventLoop:
        """Where rounds run for callers outside any loop: `loop` when given and running, else a
        private loop thread."""
        return self.loop if self.loop is not None and self.loop.is_running() else _background_loop()

    def round_limit(self) -> float:
        """How long a caller waits for a round at most: the longest check timeout plus slack."""
        return self._round_limit()

    def failed_response(self, detailed: bool = False) -> tuple[int, bytes]:
        return self._failed_response(detailed)

    @staticmethod
    def response_headers() -> list[tuple[str, str]]:
        return list(HEADERS)

    def _without_round(self, endpoint: str, detailed: bool) -> tuple[int, bytes] | None:
        """The answers that need no check results: liveness, and start-up before or after."""
        if endpoint == LIVE:
            return 200, LIVE_BODY
        if endpoint != STARTUP:
            return None
        if self._startup_passed:
            return 200, render(PASS, None, detailed)
        if not self._started:
            return 503, render(FAIL, None, detailed, "start-up has not finished")
        return None

    def _answer(self, current: Round, endpoint: str, detailed: bool) -> tuple[int, bytes]:
        code, body = current.response(READY if endpoint == STARTUP else endpoint, detailed)
        if endpoint == STARTUP and code == 200:
            self._startup_passed = True
        return code, body

    @staticmethod
    def _failed_response(detailed: bool) -> tuple[int, bytes]:
        return 503, render(FAIL, None, detailed, "the health checks could not be run")

    # -- rounds ---------------------------------------------------------------------------------------

    def _fresh(self) -> Round | None:
        current = self._round
        if current is not None and time.monotonic() - current.finished < self.cache_seconds:
            return current
        return None

    async def results(self) -> Round:
        """The cached round, or the one in progress, or a new one run on this loop."""
        current = self._fresh()
        if current is not None:
            return current
        future = self._join_or_start(asyncio.get_running_loop())
        # shield: a probe that disconnects must not cancel the round other probes wait for
        return await asyncio.shield(asyncio.wrap_future(future))

    def results_sync(self) -> Round:
        current = self._fresh()
        if current is not None:
            return current
        future = self._join_or_start(self.sync_loop())
        return future.result(timeout=self._round_limit())

    def _round_limit(self) -> float:
        limits = [self.timeout_for(c) for c in self._checks.values()]
        return max(limits, default=0.0) + 5.0

    def _join_or_start(self, loop: asyncio.AbstractEventLoop) -> concurrent.futures.Future:
        with self._lock:
            current = self._fresh()
            if current is not None:
                done: concurrent.futures.Future = concurrent.futures.Future()
                done.set_result(current)
                return done
            pending = self._pending
            # a round whose loop died (a test's loop, a stopped server) would never finish
            if pending is not None and time.monotonic() - pending.started < self._round_limit():
                return pending.future
            pending = self._pending = _Pending()

        def start() -> None:
            task = loop.create_task(self._round_task(pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        if _running_loop() is loop:
            start()
        else:
            try:
                loop.call_soon_threadsafe(start)
            except RuntimeError as exc:  # the loop is closed
                self._settle(pending, None, exc)
        return pending.future

    async def _round_task(self, pending: _Pending) -> None:
        try:
            checks = list(self._checks.values())
            runs = await asyncio.gather(*(self._run(check) for check in checks))
            self._settle(pending, Round(tuple(runs), time.monotonic()), None)
        except BaseException as exc:  # never leave waiters hanging, whatever happened
            self._settle(pending, None, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise

    def _settle(self, pending: _Pending, result: Round | None, error: BaseException | None) -> None:
        with self._lock:
            if result is not None:
                self._round = result
            if self._pending is pending:
                self._pending = None
        if pending.future.done():
            return
        if result is not None:
            pending.future.set_result(result)
        else:
            pending.future.set_exception(error if isinstance(error, Exception) else RuntimeError("cancelled"))

    # -- one check ------------------------------------------------------------------------------------

    async def _run(self, check: Check) -> CheckRun:
        state = self._states.get(check.name) or _State()
        last = state.last
        if check.interval is not None and last is not None:
            if time.monotonic() - last.finished < check.interval:
                return last
        started_at = _now_iso()
        started = time.perf_counter()
        with self._tracer.start_as_current_span(
            "health check " + check.name, attributes={"covet.health.check": check.name}
        ) as span:
            if state.stuck is not None and not state.stuck.done():
                result = CheckResult(FAIL, output="the previous run timed out and has not finished yet")
            else:
                state.stuck = None
                result = await self._call(check, state)
            duration = time.perf_counter() - started
            span.set_attribute("covet.health.status", result.status)
            if result.status == FAIL:
                span.set_status(trace.StatusCode.ERROR)
        run = CheckRun(
            check.name, result, check.critical, check.component_type, started_at, duration, time.monotonic()
        )
        state.last = run
        self._record(check.name, state, run)
        return run

    async def _call(self, check: Check, state: _State) -> CheckResult:
        timeout = self.timeout_for(check)
        deadline = time.monotonic() + timeout
        try:
            if check.is_async:
                handle: Any = asyncio.ensure_future(check.func())
                waitable: asyncio.Future = handle
            else:
                # the span is current in this context: spans of the check's own calls nest under it
                handle = in_thread(contextvars.copy_context().run, check.func)
                waitable = asyncio.wrap_future(handle)
        except Exception as exc:  # the callable failed before it could be awaited
            return CheckResult(FAIL, output=_describe(exc))
        while True:
            done, _ = await asyncio.wait({waitable}, timeout=max(0.0, deadline - time.monotonic()))
            if not done:
                handle.cancel()  # a task unwinds (a DB check terminates its connection); a thread cannot
                handle.add_done_callback(_forget)
                waitable.add_done_callback(_forget)
                state.stuck = handle
                return CheckResult(FAIL, output=f"timed out after {timeout:g} s")
            try:
                value = waitable.result()
                if not inspect.isawaitable(value):
                    return to_result(value)
            except asyncio.CancelledError:
                return CheckResult(FAIL, output="cancelled")
            except Exception as exc:
                return CheckResult(FAIL, output=_describe(exc))
            # a sync callable that returned a coroutine (a lambda around an async function)
            handle = waitable = asyncio.ensure_future(value)

    def _record(self, name: str, state: _State, run: CheckRun) -> None:
        try:
            if state.series is None:
                from covet_otel import instruments

                state.series = (
                    instruments.gauge("covet_health_check_status").series((name,)),
                    instruments.histogram("covet_health_check_duration_seconds").series((name,)),
                )
            status, duration = state.series
            status.set(STATUS_VALUE[run.result.status])
            duration.record(run.duration)
        except Exception:  # metrics are a by-product: never let them break a probe
            pass
