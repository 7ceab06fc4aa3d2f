"""What the event modules share: bounded warnings, cheap labelled counters, job-run timing."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .. import instruments

_logger = logging.getLogger("covet_otel")

# Names that become label values (backup names, migrators, business events) are chosen by the
# programmer, but a loop or an f-string can still make them unbounded: they must look like
# identifiers, so a path, a timestamp or a user id is refused at declaration with a clear error.
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")

_MAX_WARNINGS = 200
_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str, *args: object, exc_info: bool = False) -> None:
    """Log a WARNING the first time `key` is seen (a bounded number of keys per process)."""
    if key in _warned:
        return
    with _warned_lock:
        if key in _warned or len(_warned) >= _MAX_WARNINGS:
            return
        _warned.add(key)
    _logger.warning(message, *args, exc_info=exc_info)


def non_negative_number(value: object) -> bool:
    """True for a finite int or float >= 0 (bools, NaN, strings and negatives are refused)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def check_name(kind: str, name: object) -> str:
    """`name` if it is a valid label value for `kind`, else a ValueError that says what is."""
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} is not valid: expected 1-64 characters, a letter first, then "
            "letters, digits, '_', '.', ':' or '-' (it becomes a metric label, so it must be a "
            "fixed name, not a path, an id or a timestamp)"
        )
    return name


class ReasonCounter:
    """One catalogue counter incremented by label tuple; values outside the catalogue's allowed
    sets count as `other` and are reported once in the log. Never raises."""

    _MAX_CACHED = 256

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self._cache: dict[tuple[str, ...], instruments.CounterSeries] = {}

    def add(self, labels: tuple[str, ...]) -> None:
        try:
            try:
                series = self._cache.get(labels)
            except TypeError:  # an unhashable value: its text is just another unknown reason
                labels = tuple(str(v) for v in labels)
                series = None
            if series is None:
                series = self._resolve(labels)
            series.add(1)
        except Exception:  # telemetry never breaks the caller
            warn_once(f"{self.metric}:error", "covet-otel: cannot record %s", self.metric, exc_info=True)

    def _resolve(self, labels: tuple[str, ...]) -> instruments.CounterSeries:
        instrument = instruments.counter(self.metric)
        normalised = instrument.normalise(labels)
        if normalised != labels:
            for label, given, kept in zip(instrument.definition.labels, labels, normalised):
                if given != kept:
                    warn_once(
                        f"{self.metric}:{label.name}:{given!r}"[:200],
                        "covet-otel: %s=%r is not one of %s for %s; counted as %r",
                        label.name,
                        given,
                        label.values,
                        self.metric,
                        kept,
                    )
        series = instrument.series(normalised)
        if len(self._cache) < self._MAX_CACHED:  # unbounded input must not grow memory
            self._cache[labels] = series
        return series


Outcome = str  # "success" or "failure"
F = TypeVar("F", bound=Callable[..., Any])


class JobRun:
    """A timed run of a job (one backup, one migration) usable as a context manager or, through
    `__call__`, as a decorator that times every call of the function separately.

    The wrapped code's exceptions propagate unchanged; recording errors are logged, never raised.
    Subclasses implement `_start()` and `_finish(outcome, seconds)`.
    """

    kind = "job"

    def __init__(self) -> None:
        self._t0: float | None = None
        self.started_at: float | None = None
        self.failed = False

    def mark_failed(self) -> None:
        """Record this run as a failure even though no exception is raised (a non-zero exit)."""
        self.failed = True

    def _copy(self) -> JobRun:
        raise NotImplementedError

    def _start(self) -> None:
        pass

    def _finish(self, outcome: Outcome, seconds: float) -> Outcome:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self.failed = False
        self.started_at = time.time()
        self._t0 = time.monotonic()
        try:
            self._start()
        except Exception:
            warn_once(
                f"{self.kind}:start", "covet-otel: cannot record the start of a %s", self.kind, exc_info=True
            )
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        seconds = time.monotonic() - (self._t0 if self._t0 is not None else time.monotonic())
        outcome = "failure" if exc_type is not None or self.failed else "success"
        try:
            self._finish(outcome, seconds)
        except Exception:
            warn_once(
                f"{self.kind}:finish", "covet-otel: cannot record the end of a %s", self.kind, exc_info=True
            )
        return False  # never swallow the job's own exception

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._copy():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # a fresh run per call: concurrent calls must not share timing state
            with self._copy():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
