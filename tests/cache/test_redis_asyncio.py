"""redis.asyncio client on a real Redis, read back from the scraped /metrics text."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from test_redis_sync import calls, hits, misses, nonzero


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def server(redis_server, instrumented, metrics):
    redis_server.client().flushdb()
    from covet_otel import instruments

    instruments.reset_all()
    return redis_server


def test_hits_misses_and_mget(server, metrics) -> None:
    async def work() -> None:
        r = aioredis.Redis(host=server.host, port=server.port)
        await r.set("a", "1")
        await r.set("c", "3")
        assert await r.get("a") == b"1"
        assert await r.get("b") is None
        assert await r.mget("a", "b", "c") == [b"1", None, b"3"]
        assert await r.exists("a", "b") == 1
        await r.aclose()

    run(work())
    samples = metrics.scrape()
    assert calls(samples, "SET") == 2
    assert calls(samples, "GET") == 2
    assert (hits(samples, "GET"), misses(samples, "GET")) == (1, 1)
    assert (hits(samples, "MGET"), misses(samples, "MGET")) == (2, 1)
    assert (hits(samples, "EXISTS"), misses(samples, "EXISTS")) == (1, 1)


def test_pipeline_transaction_and_watch(server, metrics) -> None:
    async def work() -> None:
        r = aioredis.Redis(host=server.host, port=server.port)
        async with r.pipeline(transaction=False) as pipe:
            pipe.set("k", "v").get("k").get("nope")
            assert await pipe.execute() == [True, b"v", None]
        async with r.pipeline() as pipe:
            pipe.incr("n").hget("h", "f")
            assert await pipe.execute() == [1, None]
        async with r.pipeline() as pipe:
            await pipe.watch("n")
            value = int(await pipe.get("n"))  # sent at once while watching
            pipe.multi()
            pipe.set("n", value + 1)
            assert await pipe.execute() == [True]
        await r.aclose()

    run(work())
    samples = metrics.scrape()
    assert calls(samples, "PIPELINE") == 1
    assert calls(samples, "MULTI") == 2
    assert calls(samples, "WATCH") == 1
    assert calls(samples, "GET") == 1  # the watched read
    assert nonzero(samples, "covet_cache_pipeline_commands_total") == {
        "SET": 2,
        "GET": 2,
        "INCRBY": 1,
        "HGET": 1,
    }
    assert (hits(samples, "GET"), misses(samples, "GET")) == (2, 1)
    assert (hits(samples, "HGET"), misses(samples, "HGET")) == (0, 1)


def test_response_error_reaches_the_app(server, metrics) -> None:
    async def work() -> None:
        r = aioredis.Redis(host=server.host, port=server.port)
        await r.set("text", "abc")
        with pytest.raises(redis.exceptions.ResponseError):
            await r.incr("text")
        await r.aclose()

    run(work())
    samples = metrics.scrape()
    assert samples.value("covet_cache_errors_total", command="INCRBY", error_type="response") == 1
    assert calls(samples, "INCRBY", "error") == 1


def test_redis_stopped_then_restarted(fresh_redis, instrumented, metrics) -> None:
    async def work() -> None:
        r = aioredis.Redis(host=fresh_redis.host, port=fresh_redis.port)
        await r.set("k", "v")
        assert await r.get("k") == b"v"
        fresh_redis.stop()
        with pytest.raises(redis.exceptions.ConnectionError) as raised:
            await r.get("k")
        assert type(raised.value) is redis.exceptions.ConnectionError
        with pytest.raises(redis.exceptions.ConnectionError):
            await r.pipeline(transaction=False).get("k").execute()
        samples = metrics.scrape()
        assert samples.value("covet_cache_errors_total", command="GET", error_type="connection") == 1
        assert samples.value("covet_cache_errors_total", command="PIPELINE", error_type="connection") == 1
        fresh_redis.start()
        assert await r.get("k") is None
        await r.set("k", "again")
        assert await r.get("k") == b"again"
        await r.aclose()

    run(work())
    samples = metrics.scrape()
    assert (hits(samples, "GET"), misses(samples, "GET")) == (2, 1)
    assert calls(samples, "GET", "success") == 3
    assert calls(samples, "GET", "error") == 1
    assert samples.value("covet_cache_errors_total", command="GET", error_type="connection") == 1


def test_calls_cancelled_by_the_apps_own_timeout_count_as_cancelled(server, metrics) -> None:
    """Issue 17, point 4: asyncio.wait_for cancelling a call used to record nothing. The rule
    asyncpg follows too: counted, with the time it ran, under outcome cancelled; not a Redis
    error."""

    async def work() -> None:
        r = aioredis.Redis(host=server.host, port=server.port)
        for _ in range(2):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.blpop(["empty-list"], timeout=5), 0.3)
        pipe = r.pipeline(transaction=False)
        pipe.get("a").blpop(["empty-list"], timeout=5)
        task = asyncio.create_task(pipe.execute())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await r.ping() is True  # the client is usable after the cancellations
        await r.aclose()

    run(work())
    samples = metrics.scrape()
    duration = "covet_cache_operation_duration_seconds"
    assert samples.value(f"{duration}_count", command="BLPOP", outcome="cancelled") == 2
    assert 0.6 <= samples.value(f"{duration}_sum", command="BLPOP", outcome="cancelled") < 1.5
    assert samples.value(f"{duration}_bucket", command="BLPOP", outcome="cancelled", le="0.25") == 0
    assert samples.value(f"{duration}_count", command="PIPELINE", outcome="cancelled") == 1
    for command in ("BLPOP", "PIPELINE"):
        assert samples.get(f"{duration}_count", command=command, outcome="error") == 0
        assert samples.get("covet_cache_errors_total", command=command, error_type="timeout") == 0
    assert samples.value("covet_cache_pipeline_commands_total", command="BLPOP") == 1
    assert samples.get(f"{duration}_count", command="BLPOP", outcome="success") == 0
