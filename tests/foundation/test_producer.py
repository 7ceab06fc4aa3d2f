"""Hot-path series reach SDK readers as ordinary OTel data, in the reader's temporality."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader

from covet_otel import instruments
from covet_otel.export import producer

DELTA = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}


def _point(metric, **attributes: str):
    """The data point with exactly these attributes (other tests may have made other series)."""
    (found,) = [p for p in metric.data.data_points if dict(p.attributes) == attributes]
    return found


MAIN_SELECT = {"pool": "main", "operation": "SELECT"}
MAIN_SELECT_OK = {"pool": "main", "operation": "SELECT", "outcome": "success"}


def _metrics(reader: InMemoryMetricReader) -> dict:
    data = reader.get_metrics_data()
    out = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            if sm.scope.name == "covet_otel":
                out.update({m.name: m for m in sm.metrics})
    return out


@pytest.fixture
def fresh_instruments():
    instruments.reset_all()
    yield
    instruments.reset_all()


def _reader(temporality: dict | None = None) -> tuple[MeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader(preferred_temporality=temporality)
    provider = MeterProvider(metric_readers=[reader])
    producer.attach(provider)
    producer.attach(provider)  # idempotent
    return provider, reader


def test_cumulative_counter_and_histogram(fresh_instruments) -> None:
    provider, reader = _reader()
    counter = instruments.counter("covet_db_slow_queries_total").series(("main", "SELECT"))
    hist = instruments.histogram("covet_db_query_duration_seconds").series(("main", "SELECT", "success"))
    counter.add(2)
    hist.record(0.2)
    first = _metrics(reader)
    counter.add(3)
    hist.record(0.4)
    second = _metrics(reader)
    assert _point(second["covet.db.slow.queries"], **MAIN_SELECT).value == 5
    assert second["covet.db.slow.queries"].data.is_monotonic
    hp = _point(second["covet.db.query.duration"], **MAIN_SELECT_OK)
    assert (hp.count, round(hp.sum, 9), hp.min, hp.max) == (2, 0.6, 0.2, 0.4)
    assert second["covet.db.query.duration"].unit == "s"
    assert _point(first["covet.db.slow.queries"], **MAIN_SELECT).value == 2
    provider.shutdown()


def test_delta_temporality_sends_differences(fresh_instruments) -> None:
    provider, reader = _reader(DELTA)
    counter = instruments.counter("covet_db_slow_queries_total").series(("main", "SELECT"))
    hist = instruments.histogram("covet_db_query_duration_seconds").series(("main", "SELECT", "success"))
    counter.add(2)
    hist.record(0.2)
    _metrics(reader)
    counter.add(3)
    hist.record(0.4)
    hist.record(0.4)
    second = _metrics(reader)
    assert second["covet.db.slow.queries"].data.aggregation_temporality == AggregationTemporality.DELTA
    assert _point(second["covet.db.slow.queries"], **MAIN_SELECT).value == 3
    hp = _point(second["covet.db.query.duration"], **MAIN_SELECT_OK)
    assert hp.count == 2 and round(hp.sum, 9) == 0.8 and hp.min is None
    provider.shutdown()


def test_a_failing_callback_costs_only_its_own_metric(fresh_instruments) -> None:
    provider, reader = _reader()

    def broken():
        raise RuntimeError("psutil went away")

    gauge = instruments.gauge("covet_process_threads")
    gauge.observe(broken)
    try:
        instruments.counter("covet_db_slow_queries_total").add(1, ("main", "SELECT"))
        got = _metrics(reader)
        assert "covet.db.slow.queries" in got and "covet.process.threads" not in got
    finally:
        gauge.remove_callback(broken)
        provider.shutdown()


def test_unknown_and_mismatched_names_are_programming_errors() -> None:
    with pytest.raises(KeyError, match="not in the covet_otel catalogue"):
        instruments.counter("covet_nope_total")
    with pytest.raises(TypeError, match="is a histogram in the catalogue"):
        instruments.counter("covet_db_query_duration_seconds")
    with pytest.raises(ValueError, match="comes from the collector"):
        instruments.gauge("covet_cache_memory_usage_bytes")
    with pytest.raises(ValueError, match="takes labels"):
        instruments.histogram("covet_db_query_duration_seconds").series(("only-one",))


BAD_VALUES = (float("nan"), float("inf"), float("-inf"), -1.0, -5)


def test_nan_inf_and_negative_values_are_dropped_with_one_warning(metrics, caplog) -> None:
    """Issue 17, point 8: one NaN or inf used to make a series NaN/inf for good."""
    import logging

    hist = instruments.histogram("covet_db_query_duration_seconds").series(("main", "SELECT", "success"))
    counter = instruments.counter("covet_db_slow_queries_total").series(("main", "SELECT"))
    hist.record(0.25)
    counter.add(2)
    with caplog.at_level(logging.WARNING, logger="covet_otel"):
        instruments._refused_next = 0.0  # an earlier test's warning must not hold this one back
        for value in BAD_VALUES:
            hist.record(value)
            counter.add(value)
    hist.record(0.5)
    counter.add(3)
    assert hist.snapshot() == (hist.snapshot()[0], 2, 0.75, 0.25, 0.5)
    assert counter.value == 5
    samples = metrics.scrape()
    assert samples.value("covet_db_slow_queries_total", pool="main", operation="SELECT") == 5
    labels = {"pool": "main", "operation": "SELECT", "outcome": "success"}
    assert samples.value("covet_db_query_duration_seconds_sum", **labels) == 0.75
    assert samples.value("covet_db_query_duration_seconds_count", **labels) == 2
    warnings = [r for r in caplog.records if "dropped it" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: ten bad values, one line
    assert "given nan" in warnings[0].getMessage()


def test_business_value_rejects_nan_and_inf_and_stays_monotonic(metrics, caplog) -> None:
    import logging

    from covet_otel.events import declare_business_event

    event = declare_business_event("hardening_sale", currency="EUR")
    with caplog.at_level(logging.WARNING, logger="covet_otel"):
        event.add_value(10.5)
        for value in BAD_VALUES:
            event.add_value(value)
        event.add_value(4.5)
        event.record(float("nan"))
        event.record(2)
    samples = metrics.scrape()
    assert samples.value("covet_business_value_total", event="hardening_sale", currency="EUR") == 15.0
    assert samples.value("covet_business_events_total", event="hardening_sale") == 2
    dropped = [r.getMessage() for r in caplog.records if "hardening_sale" in r.getMessage()]
    assert dropped == [
        "covet-otel: business event 'hardening_sale': amount nan dropped (values are numbers >= 0; "
        "declare a separate event for refunds)",
        "covet-otel: business event 'hardening_sale': count nan dropped (counts are numbers >= 0)",
    ]
