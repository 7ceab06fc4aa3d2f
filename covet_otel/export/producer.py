"""Hands covet_otel's hot-path series to the OTel SDK's metric readers.

The OTel specification calls this a MetricProducer: a source of metric data that a MetricReader
collects beside the SDK's own instruments. The Python SDK has no public hook for one yet, so
`attach()` wraps each reader's collect callback (set by the MeterProvider) and appends one
`covet_otel` scope to what the SDK collected. Everything downstream (Prometheus text, OTLP
protobuf, temporality preferences, timeouts) is the SDK's own code.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from .. import instruments
from ..instruments import HistogramSeries, Instrument
from ..version import __version__

_logger = logging.getLogger("covet_otel")
SCOPE = InstrumentationScope("covet_otel", __version__)

# The SDK instrument class whose temporality preference applies to each catalogue kind (callback
# values of counters are cumulative totals, like an ObservableCounter's). Readers key their
# preferences by the SDK's internal classes (_Counter...), older SDKs by the public ones: match
# by name so both work.
_TEMPORALITY_CLASS = {
    "counter": "Counter",
    "updowncounter": "UpDownCounter",
    "histogram": "Histogram",
    "gauge": "ObservableGauge",
}
_OBSERVED_TEMPORALITY_CLASS = {"counter": "ObservableCounter"}


class _ReaderState:
    """What one reader was last sent, so that delta temporality can be computed."""

    def __init__(self) -> None:
        self.reset()
        _states.add(self)

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.last: dict[tuple[str, tuple[str, ...]], Any] = {}
        self.last_ns: int | None = None


_states: weakref.WeakSet[_ReaderState] = weakref.WeakSet()


def reset_states() -> None:
    """Forget what readers were sent (a forked child starts its series from zero)."""
    for state in list(_states):
        state.reset()


def produce(reader: MetricReader, state: _ReaderState) -> list[Metric]:
    """Metric data for every registered instrument, in the reader's preferred temporality."""
    now = time.time_ns()
    prefs = getattr(reader, "_instrument_class_temporality", {})
    metrics: list[Metric] = []
    with state.lock:
        for instrument in instruments.registered():
            try:
                metric = _metric(instrument, prefs, state, now)
            except Exception:  # a broken callback must not cost the other metrics
                _logger.warning("covet_otel: collecting %s failed", instrument.definition.name, exc_info=True)
                continue
            if metric is not None:
                metrics.append(metric)
        state.last_ns = now
    return metrics


def _temporality(instrument: Instrument, prefs: dict, observed: bool) -> AggregationTemporality:
    kind = instrument.definition.kind
    wanted = (_OBSERVED_TEMPORALITY_CLASS.get(kind) if observed else None) or _TEMPORALITY_CLASS[kind]
    for cls, temporality in prefs.items():
        if cls.__name__.lstrip("_") == wanted:
            return temporality
    return AggregationTemporality.CUMULATIVE


def _metric(instrument: Instrument, prefs: dict, state: _ReaderState, now: int) -> Metric | None:
    d = instrument.definition
    points: list[Any] = []
    if d.kind == "histogram":
        temporality = _temporality(instrument, prefs, observed=False)
        for labels, series in instrument.items():
            point = _histogram_point(d.name, d.label_names, labels, series, temporality, state, now)
            if point is not None:
                points.append(point)
        data: Any = Histogram(data_points=points, aggregation_temporality=temporality)
    else:
        observed = bool(instrument.callbacks)
        temporality = _temporality(instrument, prefs, observed)
        values: dict[tuple[str, ...], tuple[float, int]] = {
            labels: (series.value, series.start_ns) for labels, series in instrument.items()
        }
        for callback in instrument.callbacks:
            for labels, value in callback():
                key = instrument.normalise(labels)
                if math.isfinite(value):
                    values[key] = (float(value), values.get(key, (0.0, _PROCESS_START_NS))[1])
        for labels, (value, start_ns) in values.items():
            attributes = dict(zip(d.label_names, labels))
            if d.kind == "gauge":
                points.append(NumberDataPoint(attributes, start_ns, now, value))
                continue
            if temporality == AggregationTemporality.DELTA:
                key = (d.name, labels)
                previous = state.last.get(key, 0.0)
                state.last[key] = value
                start_ns = state.last_ns or start_ns
                value = value - previous
            points.append(NumberDataPoint(attributes, start_ns, now, value))
        if d.kind == "gauge":
            data = Gauge(data_points=points)
        else:
            data = Sum(
                data_points=points,
                aggregation_temporality=temporality,
                is_monotonic=d.kind == "counter",
            )
    if not points:
        return None
    return Metric(name=d.otel_name, description=d.description, unit=d.unit, data=data)


def _histogram_point(
    name: str,
    label_names: tuple[str, ...],
    labels: tuple[str, ...],
    series: HistogramSeries,
    temporality: AggregationTemporality,
    state: _ReaderState,
    now: int,
) -> HistogramDataPoint | None:
    counts, count, total, low, high = series.snapshot()
    start_ns = series.start_ns
    if temporality == AggregationTemporality.DELTA:
        key = (name, labels)
        prev = state.last.get(key)
        state.last[key] = (counts, count, total)
        if prev is not None:
            counts = [a - b for a, b in zip(counts, prev[0])]
            count -= prev[1]
            total -= prev[2]
        start_ns = state.last_ns or start_ns
        low = high = None  # type: ignore[assignment]  # unknown for the interval; optional in OTLP
    elif count == 0:
        low = high = 0.0
    return HistogramDataPoint(
        attributes=dict(zip(label_names, labels)),
        start_time_unix_nano=start_ns,
        time_unix_nano=now,
        count=count,
        sum=total,
        bucket_counts=counts,
        explicit_bounds=list(series.bounds),
        min=low,
        max=high,
    )


_PROCESS_START_NS = time.time_ns()


def attach(provider: MeterProvider) -> None:
    """Make every reader of an SDK MeterProvider also collect covet_otel's series.

    Idempotent per reader. Works for a provider the application built itself, too.
    """
    for reader in provider._metric_readers:
        if getattr(reader, "_covet_attached", False):
            continue
        original = reader._collect
        if original is None:
            continue
        reader._collect = _wrap(original, provider, _ReaderState())  # type: ignore[method-assign]
        reader._covet_attached = True  # type: ignore[attr-defined]


def _wrap(original: Callable, provider: MeterProvider, state: _ReaderState) -> Callable:
    def collect(reader: MetricReader, timeout_millis: float = 10_000) -> MetricsData | None:
        sdk_data = original(reader, timeout_millis=timeout_millis)
        ours = produce(reader, state)
        if not ours:
            return sdk_data
        scope = ScopeMetrics(scope=SCOPE, metrics=ours, schema_url="")
        resource = provider._sdk_config.resource
        if sdk_data is None or not sdk_data.resource_metrics:
            return MetricsData(resource_metrics=[ResourceMetrics(resource, [scope], resource.schema_url)])
        first, *rest = sdk_data.resource_metrics
        merged = ResourceMetrics(first.resource, [*first.scope_metrics, scope], first.schema_url)
        return MetricsData(resource_metrics=[merged, *rest])

    return collect
