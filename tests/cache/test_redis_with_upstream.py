"""Beside the upstream span instrumentor: spans from it, metrics from us, nothing counted twice."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_redis_sync import calls, hits, misses, nonzero

from covet_otel import instruments
from covet_otel.instrumentation.redis import RedisMetricsInstrumentor


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def workload(server) -> None:
    r = redis.Redis(host=server.host, port=server.port)
    r.set("k", "v")
    r.get("k")
    r.get("absent")
    r.pipeline(transaction=False).get("k").mget("k", "absent").execute()

    async def aio() -> None:
        ar = aioredis.Redis(host=server.host, port=server.port)
        await ar.get("k")
        await ar.aclose()

    asyncio.run(aio())
    r.close()


def assert_counted_once(samples) -> None:
    assert calls(samples, "SET") == 1
    assert calls(samples, "GET") == 3
    assert calls(samples, "PIPELINE") == 1
    assert nonzero(samples, "covet_cache_pipeline_commands_total") == {"GET": 1, "MGET": 1}
    assert (hits(samples, "GET"), misses(samples, "GET")) == (3, 1)
    assert (hits(samples, "MGET"), misses(samples, "MGET")) == (1, 1)


@pytest.mark.parametrize("ours_first", [True, False], ids=["covet-then-upstream", "upstream-then-covet"])
def test_both_on_counts_once_and_spans_flow(redis_server, metrics, spans, ours_first) -> None:
    provider, exporter = spans
    ours, upstream = RedisMetricsInstrumentor(), RedisInstrumentor()
    first, second = (ours, upstream) if ours_first else (upstream, ours)
    for instrumentor in (first, second):
        if instrumentor is upstream:
            upstream.instrument(tracer_provider=provider)
        else:
            ours.instrument()
    try:
        redis_server.client().flushdb()
        instruments.reset_all()
        exporter.clear()
        workload(redis_server)
    finally:
        second.uninstrument()
        first.uninstrument()
    assert_counted_once(metrics.scrape())
    names = sorted(span.name for span in exporter.get_finished_spans())
    assert names == ["GET", "GET", "GET", "GET MGET", "SET"]
    assert redis.Redis.__dict__["execute_command"].__class__.__name__ == "function"


def test_uninstrumenting_ours_under_upstream_stops_counting(redis_server, metrics, spans) -> None:
    provider, exporter = spans
    ours, upstream = RedisMetricsInstrumentor(), RedisInstrumentor()
    ours.instrument()
    upstream.instrument(tracer_provider=provider)  # upstream's wrapper now sits over ours
    try:
        ours.uninstrument()  # ours is buried: it goes inert, upstream's stays intact
        redis_server.client().flushdb()
        instruments.reset_all()
        exporter.clear()
        workload(redis_server)
        assert calls(metrics.scrape(), "GET") == 0
        assert len(exporter.get_finished_spans()) == 5

        ours.instrument()  # reactivates the buried wrapper instead of stacking a second
        instruments.reset_all()
        workload(redis_server)
        assert_counted_once(metrics.scrape())
    finally:
        upstream.uninstrument()
        ours.uninstrument()
    assert redis.Redis.__dict__["execute_command"].__class__.__name__ == "function"
