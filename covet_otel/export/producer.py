"""Hands covet_otel's hot-path series to the OTel SDK's metric readers.

The OTel specification calls this a MetricProducer: a source of metric data that a MetricReader
collects beside the SDK's own instruments. The Python SDK has no public hook for one yet, so
`attach()` wraps each reader's collect callback (set by the MeterProvider) and appends one
`covet_otel` scope to what the SDK collected. Everything downstream (Prometheus text, OTLP
protobuf, temporality preferences, timeouts) is the SDK's own code.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
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
from ..instruments import Instrument
from ..version import __version__
from . import workers

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


def produce(reader: MetricReader, state: _ReaderState, include_workers: bool = False) -> list[Metric]:
    """Metric data for every registered instrument, in the reader's preferred temporality;
    with `include_workers`, pre-fork workers' series are added (the embedded endpoint)."""
    now = time.time_ns()
    prefs = getattr(reader, "_instrument_class_temporality", {})
    metrics: list[Metric] = []
    with state.lock:
        if include_workers:
            register_worker_metrics()
        for instrument in instruments.registered():
            try:
                metric = _metric(instrument, prefs, state, now, include_workers)
            except Exception:  # a broken callback must not cost the other metrics
                _logger.warning("covet_otel: collecting %s failed", instrument.definition.name, exc_info=True)
                continue
            if metric is not None:
                metrics.append(metric)
        state.last_ns = now
    return metrics


def register_worker_metrics() -> None:
    """Create the instruments pre-fork workers record, so that the endpoint serves their series
    even when this process never recorded them itself."""
    for name in workers.names():
        with contextlib.suppress(KeyError, TypeError, ValueError):  # a worker of another version
            instruments.by_name(name)


# Set on a thread while the embedded endpoint's own writer (export/exposition.py) renders
# covet-otel's series: the reader's collection then leaves the covet_otel scope's metrics out.
_left_out = threading.local()


@contextlib.contextmanager
def covet_scope_left_out(has_ours: bool) -> Iterator[set[str]]:
    """Within the block, collections on this thread carry the covet_otel scope without metrics
    (present when `has_ours`, so that the exporter's output around it does not change, as its
    target_info); the set yielded receives the names of the metrics the SDK collected."""
    names: set[str] = set()
    _left_out.value = (has_ours, names)
    try:
        yield names
    finally:
        _left_out.value = None


def _temporality(instrument: Instrument, prefs: dict, observed: bool) -> AggregationTemporality:
    kind = instrument.definition.kind
    wanted = (_OBSERVED_TEMPORALITY_CLASS.get(kind) if observed else None) or _TEMPORALITY_CLASS[kind]
    for cls, temporality in prefs.items():
        if cls.__name__.lstrip("_") == wanted:
            return temporality
    return AggregationTemporality.CUMULATIVE


# One series' values as plain data: [value, start_ns] for sums and gauges, and
# [bucket_counts, count, sum, min, max, start_ns] for histograms. Worker snapshots use it too.
State = list


def local_states(instrument: Instrument) -> dict[tuple[str, ...], State]:
    """This process's values of one instrument, callbacks included."""
    if instrument.definition.kind == "histogram":
        return {
            labels: [*series.snapshot(), series.start_ns]  # type: ignore[union-attr]
            for labels, series in instrument.items()
        }
    states: dict[tuple[str, ...], State] = {
        labels: [series.value, series.start_ns]  # type: ignore[union-attr]
        for labels, series in instrument.items()
    }
    for callback in instrument.callbacks:
        for labels, value in callback():
            if math.isfinite(value):
                key = instrument.normalise(labels)
                states[key] = [float(value), states.get(key, [0.0, _PROCESS_START_NS])[1]]
    return states


def _metric(
    instrument: Instrument, prefs: dict, state: _ReaderState, now: int, include_workers: bool
) -> Metric | None:
    d = instrument.definition
    states = local_states(instrument)
    if include_workers:
        workers.merge_into(d, states)
    observed = bool(instrument.callbacks) and d.kind != "histogram"
    temporality = _temporality(instrument, prefs, observed)
    points: list[Any] = []
    label_names = d.label_names
    for labels, values in states.items():
        attributes = dict(zip(label_names, labels))
        if d.kind == "histogram":
            points.append(
                _histogram_point(d.name, attributes, labels, values, instrument, temporality, state, now)
            )
            continue
        value, start_ns = values
        if d.kind != "gauge" and temporality == AggregationTemporality.DELTA:
            key = (d.name, labels)
            previous = state.last.get(key, 0.0)
            state.last[key] = value
            start_ns = state.last_ns or start_ns
            value = value - previous
        points.append(NumberDataPoint(attributes, start_ns, now, value))
    if not points:
        return None
    if d.kind == "histogram":
        data: Any = Histogram(data_points=points, aggregation_temporality=temporality)
    elif d.kind == "gauge":
        data = Gauge(data_points=points)
    else:
        data = Sum(data_points=points, aggregation_temporality=temporality, is_monotonic=d.kind == "counter")
    return Metric(name=d.otel_name, description=d.description, unit=d.unit, data=data)


def _histogram_point(
    name: str,
    attributes: dict[str, str],
    labels: tuple[str, ...],
    values: State,
    instrument: Instrument,
    temporality: AggregationTemporality,
    state: _ReaderState,
    now: int,
) -> HistogramDataPoint:
    counts, count, total, low, high, start_ns = values
    if temporality == AggregationTemporality.DELTA:
        key = (name, labels)
        prev = state.last.get(key)
        state.last[key] = (counts, count, total)
        if prev is not None:
            counts = [a - b for a, b in zip(counts, prev[0])]
            count -= prev[1]
            total -= prev[2]
        start_ns = state.last_ns or start_ns
        low = high = None  # unknown for the interval; optional in OTLP
    elif count == 0:
        low = high = 0.0
    return HistogramDataPoint(
        attributes=attributes,
        start_time_unix_nano=start_ns,
        time_unix_nano=now,
        count=count,
        sum=total,
        bucket_counts=counts,
        explicit_bounds=list(instrument.bounds),  # type: ignore[attr-defined]
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
        # only a pull endpoint speaks for the workers: pushing workers export for themselves
        include_workers = type(reader).__name__ == "PrometheusMetricReader"
        state = _ReaderState()
        reader._collect = _wrap(original, provider, state, include_workers)  # type: ignore[method-assign]
        # for the embedded endpoint's own writer, which renders what produce() would hand over
        reader._covet_state = state  # type: ignore[attr-defined]
        reader._covet_include_workers = include_workers  # type: ignore[attr-defined]
        reader._covet_attached = True  # type: ignore[attr-defined]


def _wrap(
    original: Callable, provider: MeterProvider, state: _ReaderState, include_workers: bool
) -> Callable:
    def collect(reader: MetricReader, timeout_millis: float = 10_000) -> MetricsData | None:
        sdk_data = original(reader, timeout_millis=timeout_millis)
        left_out = getattr(_left_out, "value", None)
        if left_out is None:
            ours = produce(reader, state, include_workers)
            if not ours:
                return sdk_data
        else:
            has_ours, names = left_out
            for resource_metrics in sdk_data.resource_metrics if sdk_data is not None else ():
                for scope_metrics in resource_metrics.scope_metrics:
                    names.update(metric.name for metric in scope_metrics.metrics)
            if not has_ours:
                return sdk_data
            ours = []
        scope = ScopeMetrics(scope=SCOPE, metrics=ours, schema_url="")
        resource = provider._sdk_config.resource
        if sdk_data is None or not sdk_data.resource_metrics:
            return MetricsData(resource_metrics=[ResourceMetrics(resource, [scope], resource.schema_url)])
        first, *rest = sdk_data.resource_metrics
        merged = ResourceMetrics(first.resource, [*first.scope_metrics, scope], first.schema_url)
        return MetricsData(resource_metrics=[merged, *rest])

    return collect
