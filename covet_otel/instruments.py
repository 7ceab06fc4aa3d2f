"""Hot-path instruments for catalogue metrics.

The OTel SDK pays attribute cleaning, hashing and a Measurement object on every call (6-8 µs,
see docs/performance.md), which alone exceeds the per-operation budgets. Here an instrumentor
resolves a label tuple to a *series* once, and each later update is a lock, a bisect and a few
additions on that series (well under 1 µs). Series are read at collection time by
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


class CounterSeries:
    """A monotonic sum for one label set."""

    __slots__ = ("_lock", "start_ns", "value")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.value = 0.0
        self.start_ns = time.time_ns()

    def add(self, amount: float = 1.0) -> None:
        # One chained comparison refuses negatives, NaN and infinities (NaN compares false): a
        # single NaN or inf added would make the series NaN/inf for the rest of the process.
        if not 0 <= amount <= _FINITE_MAX:
            _refused("counter", amount)
            return
        with self._lock:
            self.value += amount

    def _reset(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.value = 0.0
        self.start_ns = time.time_ns()


class UpDownSeries(CounterSeries):
    """A sum that may go down (in-flight requests)."""

    __slots__ = ()

    def add(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value += amount


class GaugeSeries(CounterSeries):
    """The last value set."""

    __slots__ = ()

    def set(self, value: float) -> None:
        self.value = value  # one store: atomic under the GIL, no lock needed


class HistogramSeries:
    """Explicit-bucket histogram for one label set (OTel semantics: bucket i holds
    bounds[i-1] < v <= bounds[i])."""

    __slots__ = ("_lock", "bounds", "count", "counts", "max", "min", "start_ns", "sum")

    def __init__(self, lock: threading.Lock, bounds: tuple[float, ...]) -> None:
        self._lock = lock
        self.bounds = bounds
        self._zero()

    def _zero(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.start_ns = time.time_ns()

    def record(self, value: float) -> None:
        if not 0 <= value <= _FINITE_MAX:  # negative, NaN, inf: durations and sizes are neither
            _refused("histogram", value)
            return
        i = bisect_left(self.bounds, value)
        with self._lock:
            self.counts[i] += 1
            self.count += 1
            self.sum += value
            if value < self.min:
                self.min = value
            if value > self.max:
                self.max = value

    def snapshot(self) -> tuple[list[int], int, float, float, float]:
        with self._lock:
            return list(self.counts), self.count, self.sum, self.min, self.max

    def _reset(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._zero()


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
