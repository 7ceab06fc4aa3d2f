"""Hot-path instruments for catalogue metrics.

The OTel SDK pays attribute cleaning, hashing and a Measurement object on every call (6-8 µs,
see docs/performance.md), which alone exceeds the per-operation budgets. Here an instrumentor
resolves a label tuple to a *series* once, and each later update is a bisect and a few additions
on that thread's shard of the series, with no lock (well under 1 µs). Series are read at collection time by
`covet_otel.export.producer`, which hands them to the SDK's readers as ordinary OTel metric data,
so export still goes through the SDK's Prometheus and OTLP exporters.

Cardinality is bounded twice: label values outside a catalogue label's allowed set become
`other`, and a metric that already has `max_series` series folds any new label set into one
series whose every label is `other`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from threading import get_ident
from typing import Generic, TypeVar

from .catalogue import BY_NAME, OTHER, MetricDef

LabelValues = tuple[str, ...]
# A callback yields (label values, value) pairs when the metric is collected.
Observation = tuple[LabelValues, float]
Callback = Callable[[], Iterable[Observation]]

# Aliases from raw label tuples to their (normalised) series are remembered up to this many per
# metric; beyond, an unseen raw tuple is normalised on every call instead of growing memory.
_MAX_ALIASES = 10_000

_FINITE_MAX = sys.float_info.max
_INF = float("inf")
_logger = logging.getLogger("covet_otel")
_REFUSED_INTERVAL = 60.0
_refused_next = 0.0
_refused_held = 0


def _refused(kind: str, value: object) -> None:
    """Say that a value was dropped: one WARNING a minute at most, with the count held back, so
    a loop feeding NaN cannot flood the log. Public recording APIs (business values, backup
    sizes) check their input first and name the event; this is the last line."""
    global _refused_next, _refused_held
    try:
        now = time.monotonic()
        if now < _refused_next:
            _refused_held += 1
            return
        _refused_next = now + _REFUSED_INTERVAL
        held, _refused_held = _refused_held, 0
        _logger.warning(
            "covet-otel: a %s was given %r and dropped it (values are finite numbers >= 0)%s",
            kind,
            value,
            f"; {held} more dropped in the last {_REFUSED_INTERVAL:g} s" if held else "",
            stack_info=True,
        )
    except Exception:  # a value whose repr() fails, say: never the caller's problem
        pass


# Series take no lock on the hot path: each thread that updates a series gets a shard of its own
# (a list only that thread writes, found by its thread id), so concurrent updates never meet on
# one read-modify-write and none is lost; collection sums the shards. Half the cost of a locked
# update (docs/performance.md). A series gives at most this many threads a shard of their own;
# updates from further threads share one overflow shard under a lock, so an application that
# churns through new threads cannot grow a series without bound.
_MAX_SHARDS = 64


class CounterSeries:
    """A monotonic sum for one label set."""

    __slots__ = ("_lock", "_overflow", "_shards", "start_ns")

    def __init__(self, lock: threading.Lock) -> None:
        self._reset(lock)

    def _reset(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._shards: dict[int, list[float]] = {}
        self._overflow: list[float] | None = None
        self.start_ns = time.time_ns()

    def _shard(self) -> list[float] | None:
        """A first update from this thread: its own shard, or None past _MAX_SHARDS threads."""
        with self._lock:
            if len(self._shards) >= _MAX_SHARDS:
                if self._overflow is None:
                    self._overflow = [0.0]
                return None
            shard = self._shards[get_ident()] = [0.0]
            return shard

    def _first_add(self, amount: float) -> None:
        shard = self._shard()
        if shard is not None:
            shard[0] += amount
            return
        with self._lock:
            self._overflow[0] += amount  # type: ignore[index]

    def add(self, amount: float = 1.0) -> None:
        # One chained comparison refuses negatives, NaN and infinities (NaN compares false): a
        # single NaN or inf added would make the series NaN/inf for the rest of the process.
        if not 0 <= amount <= _FINITE_MAX:
            _refused("counter", amount)
            return
        try:
            self._shards[get_ident()][0] += amount
        except KeyError:
            self._first_add(amount)

    @property
    def value(self) -> float:
        # list() copies the dict in one C call: a thread adding its shard meanwhile cannot break it
        shards = list(self._shards.values())
        overflow = self._overflow
        return sum(shard[0] for shard in shards) + (overflow[0] if overflow is not None else 0.0)


class UpDownSeries(CounterSeries):
    """A sum that may go down (in-flight requests)."""

    __slots__ = ()

    def add(self, amount: float = 1.0) -> None:
        try:
            self._shards[get_ident()][0] += amount
        except KeyError:
            self._first_add(amount)


class GaugeSeries:
    """The last value set."""

    __slots__ = ("_lock", "start_ns", "value")

    def __init__(self, lock: threading.Lock) -> None:
        self._reset(lock)

    def set(self, value: float) -> None:
        self.value = value  # one store: atomic under the GIL, no lock needed

    def _reset(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.value = 0.0
        self.start_ns = time.time_ns()


class HistogramSeries:
    """Explicit-bucket histogram for one label set (OTel semantics: bucket i holds
    bounds[i-1] < v <= bounds[i]).

    A shard is one list: the bucket counts, then sum, min and max at [-3], [-2], [-1]; the count
    is the sum of the bucket counts."""

    __slots__ = ("_lock", "_overflow", "_shards", "bounds", "start_ns")

    def __init__(self, lock: threading.Lock, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._reset(lock)

    def _reset(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._shards: dict[int, list] = {}
        self._overflow: list | None = None
        self.start_ns = time.time_ns()

    def _new(self) -> list:
        return [0] * (len(self.bounds) + 1) + [0.0, _INF, -_INF]

    def _shard(self) -> list | None:
        with self._lock:
            if len(self._shards) >= _MAX_SHARDS:
                if self._overflow is None:
                    self._overflow = self._new()
                return None
            shard = self._shards[get_ident()] = self._new()
            return shard

    def record(self, value: float) -> None:
        if not 0 <= value <= _FINITE_MAX:  # negative, NaN, inf: durations and sizes are neither
            _refused("histogram", value)
            return
        try:
            shard = self._shards[get_ident()]
        except KeyError:
            shard = self._shard()
            if shard is None:
                with self._lock:
                    self._update(self._overflow, value)  # type: ignore[arg-type]
                return
        shard[bisect_left(self.bounds, value)] += 1
        shard[-3] += value
        if value < shard[-2]:
            shard[-2] = value
        if value > shard[-1]:
            shard[-1] = value

    def _update(self, shard: list, value: float) -> None:
        shard[bisect_left(self.bounds, value)] += 1
        shard[-3] += value
        if value < shard[-2]:
            shard[-2] = value
        if value > shard[-1]:
            shard[-1] = value

    def snapshot(self) -> tuple[list[int], int, float, float, float]:
        """(bucket counts, count, sum, min, max) over every thread's shard."""
        shards = list(self._shards.values())
        if self._overflow is not None:
            shards.append(self._overflow)
        n = len(self.bounds) + 1
        if len(shards) == 1:  # the usual case: one thread records (an event loop)
            merged = shards[0][:]  # one C-level copy: a consistent enough view of a live shard
            counts = merged[:n]
            return counts, sum(counts), merged[n], merged[n + 1], merged[n + 2]
        counts = [0] * n
        total, low, high = 0.0, _INF, -_INF
        for shard in shards:
            shard = shard[:]
            counts = [a + b for a, b in zip(counts, shard)]
            total += shard[n]
            low = min(low, shard[n + 1])
            high = max(high, shard[n + 2])
        return counts, sum(counts), total, low, high

    @property
    def count(self) -> int:
        return self.snapshot()[1]

    @property
    def sum(self) -> float:
        return self.snapshot()[2]


S = TypeVar("S", CounterSeries, UpDownSeries, GaugeSeries, HistogramSeries)


class Instrument(Generic[S]):
    """One catalogue metric and its series, keyed by label values in catalogue label order."""

    def __init__(self, definition: MetricDef, max_series: int) -> None:
        self.definition = definition
        self.max_series = max_series
        self._lock = threading.Lock()
        self._series: dict[LabelValues, S] = {}
        self._aliases: dict[LabelValues, S] = {}
        self._allowed = [
            frozenset(label.values) if label.values is not None else None for label in definition.labels
        ]
        self._callbacks: list[Callback] = []

    def series(self, labels: LabelValues = ()) -> S:
        """The series for these label values; cheap after the first call with the same tuple."""
        found = self._aliases.get(labels)
        if found is not None:
            return found
        return self._resolve(labels)

    def _resolve(self, labels: LabelValues) -> S:
        key = self._normalise(labels)
        with self._lock:
            found = self._series.get(key)
            if found is None:
                if len(self._series) >= self.max_series:
                    key = (OTHER,) * len(self.definition.labels)
                    found = self._series.get(key)
                if found is None:
                    found = self._new_series()
                    self._series[key] = found
            if len(self._aliases) < _MAX_ALIASES:
                self._aliases[labels] = found
        return found

    def _normalise(self, labels: LabelValues) -> LabelValues:
        if len(labels) != len(self._allowed):
            raise ValueError(
                f"{self.definition.name} takes labels {self.definition.label_names}, got {labels!r}"
            )
        return tuple(
            value if allowed is None or value in allowed else OTHER
            for value, allowed in zip((str(v) for v in labels), self._allowed)
        )

    def _new_series(self) -> S:
        raise NotImplementedError

    def observe(self, callback: Callback) -> None:
        """Add a callback whose (labels, value) pairs are read at each collection."""
        self._callbacks.append(callback)

    def remove_callback(self, callback: Callback) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    @property
    def callbacks(self) -> list[Callback]:
        return list(self._callbacks)

    def items(self) -> list[tuple[LabelValues, S]]:
        with self._lock:
            return list(self._series.items())

    def normalise(self, labels: LabelValues) -> LabelValues:
        return self._normalise(labels)

    def reset(self) -> None:
        """Forget all values (a forked child starts from zero; tests start clean)."""
        self._lock = threading.Lock()
        for series in list(self._series.values()):
            series._reset(threading.Lock())  # type: ignore[union-attr]
        # the series objects stay: instrumentors hold references to them


class Counter(Instrument[CounterSeries]):
    def _new_series(self) -> CounterSeries:
        return CounterSeries(threading.Lock())

    def add(self, amount: float = 1.0, labels: LabelValues = ()) -> None:
        self.series(labels).add(amount)


class UpDownCounter(Instrument[UpDownSeries]):
    def _new_series(self) -> UpDownSeries:
        return UpDownSeries(threading.Lock())

    def add(self, amount: float, labels: LabelValues = ()) -> None:
        self.series(labels).add(amount)


class Gauge(Instrument[GaugeSeries]):
    def _new_series(self) -> GaugeSeries:
        return GaugeSeries(threading.Lock())

    def set(self, value: float, labels: LabelValues = ()) -> None:
        self.series(labels).set(value)


class Histogram(Instrument[HistogramSeries]):
    def __init__(self, definition: MetricDef, max_series: int) -> None:
        super().__init__(definition, max_series)
        assert definition.buckets is not None
        self.bounds = tuple(float(b) for b in definition.buckets)

    def _new_series(self) -> HistogramSeries:
        return HistogramSeries(threading.Lock(), self.bounds)

    def record(self, value: float, labels: LabelValues = ()) -> None:
        self.series(labels).record(value)


_KINDS: dict[str, type[Instrument]] = {
    "counter": Counter,
    "updowncounter": UpDownCounter,
    "gauge": Gauge,
    "histogram": Histogram,
}

_registry: dict[str, Instrument] = {}
_registry_lock = threading.Lock()


def _get(name: str, kind: str) -> Instrument:
    instrument = _registry.get(name)
    if instrument is not None and instrument.definition.kind != kind:
        raise TypeError(f"{name} is a {instrument.definition.kind} in the catalogue, not a {kind}")
    if instrument is None:
        definition = BY_NAME.get(name)
        if definition is None:
            raise KeyError(f"{name} is not in the covet_otel catalogue")
        if definition.source != "sdk":
            raise ValueError(f"{name} comes from the {definition.source}, not from the app process")
        if definition.kind != kind:
            raise TypeError(f"{name} is a {definition.kind} in the catalogue, not a {kind}")
        from .settings import current

        with _registry_lock:
            instrument = _registry.get(name)
            if instrument is None:
                instrument = _KINDS[kind](definition, current().max_series)
                _registry[name] = instrument
    return instrument


def counter(name: str) -> Counter:
    """The process-wide counter for a catalogue metric (created on first use)."""
    return _get(name, "counter")  # type: ignore[return-value]


def updowncounter(name: str) -> UpDownCounter:
    return _get(name, "updowncounter")  # type: ignore[return-value]


def gauge(name: str) -> Gauge:
    return _get(name, "gauge")  # type: ignore[return-value]


def histogram(name: str) -> Histogram:
    return _get(name, "histogram")  # type: ignore[return-value]


def by_name(name: str) -> Instrument:
    """The instrument of any sdk catalogue metric, whatever its kind."""
    definition = BY_NAME.get(name)
    if definition is None:
        raise KeyError(f"{name} is not in the covet_otel catalogue")
    return _get(name, definition.kind)


def registered() -> list[Instrument]:
    """Every instrument created so far, in creation order."""
    return list(_registry.values())


def reset_all() -> None:
    """Zero every series (after fork, and between tests)."""
    global _registry_lock
    _registry_lock = threading.Lock()
    for instrument in _registry.values():
        instrument.reset()
