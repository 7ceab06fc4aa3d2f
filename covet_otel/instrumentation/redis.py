"""Cache metrics for redis-py: command latency, hits and misses, errors, pipelines.

Wraps the same methods as the upstream span instrumentor (opentelemetry-instrumentation-redis) on
the sync and asyncio clients: `Redis.execute_command`, `Pipeline.execute` and
`Pipeline.immediate_execute_command` (commands sent at once while a pipeline WATCHes). Each user
command or pipeline passes through exactly one of them, and only this module counts, so running
beside the span instrumentor, in either wrapping order, counts everything once.

Hot path (one GET): a dict lookup from the command name to a prepared `_Command` holding its
series, two `perf_counter` calls, one histogram record and one counter add. Label resolution,
normalisation and the series dictionaries are paid once per command name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from .. import instruments
from .redis_commands import HIT_RULES, PIPELINE, TRANSACTION, HitRule, command_label

_logger = logging.getLogger(__name__)
_perf_counter = time.perf_counter

_DURATION = "covet_cache_operation_duration_seconds"
_HITS = "covet_cache_hits_total"
_MISSES = "covet_cache_misses_total"
_ERRORS = "covet_cache_errors_total"
_PIPELINED = "covet_cache_pipeline_commands_total"

# Names as redis-py passes them (usually the upper-case str) -> prepared command. Raw names are
# remembered up to this many; beyond, an unseen spelling is resolved on every call instead.
_MAX_NAMES = 1024


class _Command:
    """One command label and every series it updates."""

    __slots__ = ("errors", "failed", "hit", "label", "miss", "ok", "pipelined", "rule")

    def __init__(self, label: str) -> None:
        self.label = label
        duration = instruments.histogram(_DURATION)
        self.ok = duration.series((label, "success"))
        self.failed: instruments.HistogramSeries | None = None  # first error: no empty error series
        self.rule: HitRule | None = HIT_RULES.get(label)
        self.hit = instruments.counter(_HITS).series((label,)) if self.rule else None
        self.miss = instruments.counter(_MISSES).series((label,)) if self.rule else None
        self.pipelined: instruments.CounterSeries | None = None  # only for commands ever pipelined
        self.errors: dict[str, instruments.CounterSeries] = {}

    def count_error(self, elapsed: float, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):
            # the caller gave up (its own deadline, an aborted request): timed, not a Redis error
            instruments.histogram(_DURATION).series((self.label, "cancelled")).record(elapsed)
            return
        if self.failed is None:
            self.failed = instruments.histogram(_DURATION).series((self.label, "error"))
        self.failed.record(elapsed)
        kind = error_type(exc)
        series = self.errors.get(kind)
        if series is None:
            series = self.errors[kind] = instruments.counter(_ERRORS).series((self.label, kind))
        series.add()


_by_name: dict[Any, _Command] = {}
_by_label: dict[str, _Command] = {}


def _command(name: object) -> _Command:
    """The prepared command for a name as redis-py passes it (slow path of the lookup)."""
    label = command_label(name)
    found = _by_label.get(label)
    if found is None:
        found = _by_label[label] = _Command(label)
    if len(_by_name) < _MAX_NAMES and isinstance(name, (str, bytes)):
        _by_name[name] = found
    return found


def error_type(exc: BaseException) -> str:
    """connection / timeout / response / other: the alerts tell a Redis that cannot be reached
    from one that answers slowly, and both from a command Redis rejected. (A call the application
    cancelled is no error: outcome `cancelled`, docs/cache.md "Cancelled calls".)
    """
    from redis import exceptions as rex

    context = exc.__context__
    if isinstance(exc, rex.WatchError) and isinstance(context, (rex.ConnectionError, rex.TimeoutError)):
        # a pipeline that lost its connection while WATCHing raises WatchError while handling it
        exc = context
    if isinstance(exc, (rex.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, (rex.ConnectionError, OSError)):
        return "connection"
    if isinstance(exc, rex.ResponseError):
        return "response"
    return "other"


_next_complaint = 0.0


def _internal_error() -> None:
    # Our own bug must never reach the app; say so at most once a minute.
    global _next_complaint
    try:
        now = time.monotonic()
        if now >= _next_complaint:
            _next_complaint = now + 60.0
            _logger.warning("covet-otel redis instrumentation failed; measurement skipped", exc_info=True)
    except Exception:  # pragma: no cover - logging itself failing
        pass


# --- one command --------------------------------------------------------------------------------
def _done(cmd: _Command, elapsed: float, reply: object, args: tuple) -> None:
    try:
        cmd.ok.record(elapsed)
        rule = cmd.rule
        if rule is not None:
            found, missing = rule(reply, args)
            if found:
                cmd.hit.add(found)  # type: ignore[union-attr]
            if missing:
                cmd.miss.add(missing)  # type: ignore[union-attr]
    except Exception:
        _internal_error()


def _failed(cmd: _Command, elapsed: float, exc: BaseException) -> None:
    try:
        cmd.count_error(elapsed, exc)
    except Exception:
        _internal_error()


def _lookup(args: tuple) -> _Command | None:
    """Slow path of the wrappers' name lookup: a first use, or an odd call (no arguments, an
    unhashable name). None only if our own code failed; the call then goes unmeasured."""
    try:
        return _command(args[0] if args else None)
    except Exception:
        _internal_error()
        return None


def _wrap_command(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    if not _active:
        return wrapped(*args, **kwargs)
    try:
        cmd = _by_name[args[0]]
    except Exception:
        cmd = _lookup(args)
        if cmd is None:
            return wrapped(*args, **kwargs)
    start = _perf_counter()
    try:
        reply = wrapped(*args, **kwargs)
    except BaseException as exc:  # cancelled calls too (asyncio.wait_for): see count_error
        _failed(cmd, _perf_counter() - start, exc)
        raise
    _done(cmd, _perf_counter() - start, reply, args)
    return reply


async def _wrap_command_async(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    if not _active:
        return await wrapped(*args, **kwargs)
    try:
        cmd = _by_name[args[0]]
    except Exception:
        cmd = _lookup(args)
        if cmd is None:
            return await wrapped(*args, **kwargs)
    start = _perf_counter()
    try:
        reply = await wrapped(*args, **kwargs)
    except BaseException as exc:  # cancelled calls too (asyncio.wait_for): see count_error
        _failed(cmd, _perf_counter() - start, exc)
        raise
    # _done(), inlined on the asyncio path: a function call is ~10 % of what a command adds
    try:
        cmd.ok.record(_perf_counter() - start)
        rule = cmd.rule
        if rule is not None:
            found, missing = rule(reply, args)
            if found:
                cmd.hit.add(found)  # type: ignore[union-attr]
            if missing:
                cmd.miss.add(missing)  # type: ignore[union-attr]
    except Exception:
        _internal_error()
    return reply


# --- pipelines and transactions -----------------------------------------------------------------
def _pipeline_operation(pipe: Any) -> tuple[_Command, list] | None:
    """The operation label and the queued commands, or None when execute() sends nothing."""
    try:
        stack = pipe.command_stack
        if not stack and not pipe.watching:
            return None  # redis-py returns [] without a round trip
        # asyncio keeps the flag in .is_transaction (its .transaction is the Redis.transaction()
        # method, always truthy); sync in .transaction
        transaction = getattr(pipe, "is_transaction", None)
        if transaction is None:
            transaction = getattr(pipe, "transaction", False)
        label = TRANSACTION if transaction is True or pipe.explicit_transaction else PIPELINE
        found = _by_label.get(label)
        if found is None:
            found = _by_label[label] = _Command(label)
        # reset() after execute() binds a new list, so this one keeps the commands
        return found, stack
    except Exception:
        _internal_error()
        return None


def _count_pipelined(stack: list, replies: object) -> None:
    """Count the queued commands; on success, their hits too (replies align with the stack).

    Tallied per command name first, so a pipeline of many GETs updates each series once."""
    try:
        aligned = isinstance(replies, list) and len(replies) == len(stack)
        tally: dict[Any, list] = {}  # raw name -> [command, queued, hits, misses]
        for i, (args, _options) in enumerate(stack):
            name = args[0] if args else None
            entry = tally.get(name)
            if entry is None:
                cmd = _by_name.get(name) or _command(name)
                entry = tally[name] = [cmd, 0, 0, 0]
            entry[1] += 1
            rule = entry[0].rule
            if aligned and rule is not None:
                reply = replies[i]  # type: ignore[index]
                if not isinstance(reply, Exception):
                    found, missing = rule(reply, args)
                    entry[2] += found
                    entry[3] += missing
        for cmd, queued, found, missing in tally.values():
            series = cmd.pipelined
            if series is None:
                series = cmd.pipelined = instruments.counter(_PIPELINED).series((cmd.label,))
            series.add(queued)
            if found:
                cmd.hit.add(found)
            if missing:
                cmd.miss.add(missing)
    except Exception:
        _internal_error()


def _pipeline_ended(
    op: _Command, elapsed: float, stack: list, replies: object, exc: BaseException | None
) -> None:
    if exc is None:
        _done(op, elapsed, None, ())
    else:
        _failed(op, elapsed, exc)
    _count_pipelined(stack, replies)  # replies None: the commands count, their hits cannot


def _wrap_pipeline(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    operation = _pipeline_operation(instance) if _active else None
    if operation is None:
        return wrapped(*args, **kwargs)
    op, stack = operation
    start = _perf_counter()
    try:
        replies = wrapped(*args, **kwargs)
    except BaseException as exc:
        _pipeline_ended(op, _perf_counter() - start, stack, None, exc)
        raise
    _pipeline_ended(op, _perf_counter() - start, stack, replies, None)
    return replies


async def _wrap_pipeline_async(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    operation = _pipeline_operation(instance) if _active else None
    if operation is None:
        return await wrapped(*args, **kwargs)
    op, stack = operation
    start = _perf_counter()
    try:
        replies = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _pipeline_ended(op, _perf_counter() - start, stack, None, exc)
        raise
    _pipeline_ended(op, _perf_counter() - start, stack, replies, None)
    return replies


# --- patching -----------------------------------------------------------------------------------
_active = False


def _targets() -> list[tuple[type, str, Any]]:
    """(class, method name, our wrapper) for every method this module patches."""
    import redis
    import redis.client

    found: list[tuple[type, str, Any]] = [
        (redis.client.Redis, "execute_command", _wrap_command),
        (redis.client.Pipeline, "execute", _wrap_pipeline),
        (redis.client.Pipeline, "immediate_execute_command", _wrap_command),
    ]
    try:
        import redis.asyncio.client as aio
    except ImportError:  # redis-py before 4.2 has no asyncio client
        return found
    found += [
        (aio.Redis, "execute_command", _wrap_command_async),
        (aio.Pipeline, "execute", _wrap_pipeline_async),
        (aio.Pipeline, "immediate_execute_command", _wrap_command_async),
    ]
    return found


def _client_classes() -> list[type]:
    import redis.client

    found: list[type] = [redis.client.Redis]
    try:
        import redis.asyncio.client as aio
    except ImportError:
        return found
    return [*found, aio.Redis]


def _remember_client(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    try:
        if _active:
            from ..health.auto import remember_redis_client

            remember_redis_client(instance)
    except Exception:
        _internal_error()
    return result


def _ours_in_chain(attribute: Any, wrapper: Any) -> bool:
    # duck-typed: wrapt 2's FunctionWrapper is not a wrapt.ObjectProxy subclass
    for _ in range(32):  # a chain of wrappers, never a cycle, but stay bounded
        if attribute is None:
            return False
        if getattr(attribute, "_self_wrapper", None) is wrapper:
            return True
        attribute = getattr(attribute, "__wrapped__", None)
    return False


class RedisMetricsInstrumentor(BaseInstrumentor):
    """covet_cache_* metrics for redis-py's sync and asyncio clients (spans stay with the
    upstream RedisInstrumentor; both can be on)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("redis >= 4.2.0",)

    def _instrument(self, **kwargs: Any) -> None:
        global _active
        from ..settings import current

        if not current().enabled:
            return
        for cls, name, wrapper in _targets():
            # Our wrapper may still sit under someone else's (uninstrumented while not on top):
            # reactivate it rather than stack a second one.
            if not _ours_in_chain(cls.__dict__.get(name), wrapper):
                wrapt.wrap_function_wrapper(cls, name, wrapper)
        if current().health_port is not None:
            # zero-code health PINGs the Redis servers the app uses: note clients as they are
            # built (once per client, never per command)
            for cls in _client_classes():
                if not _ours_in_chain(cls.__dict__.get("__init__"), _remember_client):
                    wrapt.wrap_function_wrapper(cls, "__init__", _remember_client)
        _active = True

    def _uninstrument(self, **kwargs: Any) -> None:
        global _active
        _active = False
        for cls, name, wrapper in [
            *_targets(),
            *((c, "__init__", _remember_client) for c in _client_classes()),
        ]:
            attribute = cls.__dict__.get(name)
            # Only unwrap when ours is outermost: removing the top wrapper otherwise would strip
            # another instrumentor's. A buried one stays, inert, until instrument() again.
            if getattr(attribute, "_self_wrapper", None) is wrapper:
                setattr(cls, name, attribute.__wrapped__)


__all__ = ["RedisMetricsInstrumentor", "error_type"]
