"""Cache-area fixtures: redis-py instrumented for the whole module, a clean database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from covet_otel.instrumentation.redis import RedisMetricsInstrumentor


@pytest.fixture(scope="module")
def instrumented() -> Iterator[RedisMetricsInstrumentor]:
    instrumentor = RedisMetricsInstrumentor()
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture
def client(redis_server, instrumented, metrics) -> Iterator:
    """A sync client on the session Redis, its database flushed before metrics are zeroed."""
    import redis

    r = redis.Redis(host=redis_server.host, port=redis_server.port)
    r.flushdb()
    from covet_otel import instruments

    instruments.reset_all()  # the FLUSHDB above is not part of the test
    yield r
    r.close()
