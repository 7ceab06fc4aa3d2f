"""The application always sees asyncpg's own behaviour: errors unchanged, no instrumentation error,
odd call shapes, a server that goes away, and the upstream span instrumentor alongside."""

from __future__ import annotations

import asyncio

import asyncpg
import asyncpg.connection
import pytest
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from covet_otel import instruments
from covet_otel.instrumentation import asyncpg as covet_asyncpg_module
from covet_otel.instrumentation import asyncpg_pools
from covet_otel.instrumentation.asyncpg import AsyncpgMetricsInstrumentor, name_pool

QUERY_COUNT = "covet_db_query_duration_seconds_count"
ERRORS = "covet_db_query_errors_total"


def test_wrapped_exceptions_propagate_as_the_same_object(covet_asyncpg, metrics) -> None:
    class Conn:  # enough of a Connection for the wrapper
        _proxy = None
        _reset_query = None

        class _params:
            database = "fake"

    boom = ValueError("from the driver")
    cancelled = asyncio.CancelledError()

    async def raising(self, exc: BaseException):
        raise exc

    statement = covet_asyncpg_module._connection_statement(raising)  # the patched method

    async def main() -> None:
        for exc in (boom, cancelled):
            with pytest.raises(BaseException) as info:
                await statement(Conn(), exc)
            assert info.value is exc

    asyncio.run(main())
    duration = instruments.histogram("covet_db_query_duration_seconds")
    assert duration.series(("fake", "other", "error")).count == 1
    assert duration.series(("fake", "other", "cancelled")).count == 1
    assert instruments.counter(ERRORS).series(("fake", "other", "none")).value == 1


def test_instrumentation_errors_never_reach_the_app(covet_asyncpg, database, metrics, monkeypatch) -> None:
    _, dsn = database

    def broken(*args, **kwargs):
        raise RuntimeError("covet bug")

    monkeypatch.setattr(covet_asyncpg_module, "operation", broken)
    monkeypatch.setattr(asyncpg_pools, "acquired", broken)
    monkeypatch.setattr(asyncpg_pools, "acquire_failed", broken)
    monkeypatch.setattr(asyncpg_pools, "state_for", broken)
    monkeypatch.setattr(covet_asyncpg_module, "_reported_failure", False)

    async def main() -> None:
        conn = await asyncpg.connect(dsn)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            assert await conn.fetchval("SELECT 41 + 1") == 42
            with pytest.raises(asyncpg.PostgresSyntaxError):
                await conn.fetch("SELECT FROM FROM")
            assert await pool.fetchval("SELECT 7") == 7
            with pytest.raises(asyncio.TimeoutError):
                async with pool.acquire():
                    await pool.acquire(timeout=0.05)
            async with conn.transaction():
                assert len([r async for r in conn.cursor("SELECT generate_series(1, 10)")]) == 10
        finally:
            await pool.close()
            await conn.close()

    asyncio.run(main())


def test_odd_call_shapes(covet_asyncpg, database, metrics) -> None:
    name, dsn = database

    class MyRecord(asyncpg.Record):
        pass

    async def main() -> None:
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval(query="SELECT 1", timeout=5) == 1
        assert await conn.execute(query="CREATE TABLE k (a int)") == "CREATE TABLE"
        await conn.executemany(command="INSERT INTO k VALUES ($1)", args=[(1,), (2,)], timeout=5)
        record = await conn.fetchrow("SELECT a FROM k ORDER BY a", record_class=MyRecord)
        assert isinstance(record, MyRecord) and record["a"] == 1
        assert await conn.fetchval("SELECT a FROM k ORDER BY a DESC", column=0) == 2
        # a cancelled task: the query is cancelled, the task sees CancelledError
        task = asyncio.create_task(conn.fetchval("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await conn.fetchval("SELECT 3") == 3
        # a timeout given to asyncpg itself
        with pytest.raises(asyncio.TimeoutError):
            await conn.fetchval("SELECT pg_sleep(5)", timeout=0.1)
        await conn.close()
        with pytest.raises(asyncpg.InterfaceError):
            await conn.fetchval("SELECT 1")
        # a pool proxy used after release is refused by asyncpg before any statement runs
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        async with pool.acquire() as proxy:
            pass
        with pytest.raises(asyncpg.InterfaceError):
            await proxy.fetchval("SELECT 1")
        await pool.close()

    asyncio.run(main())
    s = metrics.scrape()
    assert s.value(QUERY_COUNT, pool=name, operation="SELECT", outcome="success") == 4
    assert s.value(QUERY_COUNT, pool=name, operation="INSERT", outcome="success") == 1
    assert s.value(QUERY_COUNT, pool=name, operation="CREATE", outcome="success") == 1
    # the cancelled task: outcome cancelled, no error; asyncpg's own timeout and the closed
    # connection: errors without a SQLSTATE
    assert s.value(QUERY_COUNT, pool=name, operation="SELECT", outcome="cancelled") == 1
    assert s.value(QUERY_COUNT, pool=name, operation="SELECT", outcome="error") == 2
    assert s.value(ERRORS, pool=name, operation="SELECT", sqlstate_class="none") == 2


def test_postgres_stopped_mid_test(covet_asyncpg, fresh_postgres, metrics) -> None:
    dsn = fresh_postgres.dsn
    seen: dict[str, object] = {}

    async def main() -> None:
        conn = await asyncpg.connect(dsn)
        pool = await name_pool(asyncpg.create_pool(dsn, min_size=1, max_size=1), "stopped")
        assert await conn.fetchval("SELECT 1") == 1
        assert await pool.fetchval("SELECT 1") == 1
        fresh_postgres.stop()
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)) as info:
            await conn.fetchval("SELECT 1")
        seen["direct"] = info.value
        for _ in range(2):  # the pooled connection broke; then reconnecting is refused
            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
                await pool.fetchval("SELECT 1")
        seen["down"] = metrics.scrape()
        fresh_postgres.start()
        assert await pool.fetchval("SELECT 2") == 2
        seen["up"] = metrics.scrape()
        await pool.close()
        conn.terminate()

    asyncio.run(main())
    assert type(seen["direct"]).__module__.startswith(("asyncpg", "builtins"))
    down = seen["down"]
    assert down.total(QUERY_COUNT, pool="postgres", outcome="error") == 1
    assert down.total(ERRORS, pool="postgres") == 1
    assert down.value("covet_db_pool_acquire_duration_seconds_count", pool="stopped", outcome="error") >= 1
    assert down.value("covet_db_pool_size", pool="stopped") == 0
    assert down.value("covet_db_pool_health_status", pool="stopped") == 0
    assert seen["up"].value("covet_db_pool_health_status", pool="stopped") == 1


def test_side_by_side_with_the_upstream_span_instrumentor(database, metrics) -> None:
    name, dsn = database
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    original = asyncpg.connection.Connection.__dict__["fetchval"]
    covet, upstream = AsyncpgMetricsInstrumentor(), AsyncPGInstrumentor()

    async def queries(n: int) -> None:
        conn = await asyncpg.connect(dsn)
        for _ in range(n):
            await conn.fetchval("SELECT 1")
        await conn.close()

    def selects() -> float:
        return metrics.scrape().get(QUERY_COUNT, pool=name, operation="SELECT", outcome="success")

    def spans() -> int:
        return sum(1 for span in exporter.get_finished_spans() if span.name == "SELECT")

    try:
        # upstream first, covet second; covet switched off first
        upstream.instrument(tracer_provider=provider)
        covet.instrument()
        asyncio.run(queries(3))
        assert (selects(), spans()) == (3, 3)
        covet.uninstrument()
        asyncio.run(queries(2))
        assert (selects(), spans()) == (3, 5)
        # covet first, upstream second; upstream switched off first
        covet.instrument()
        asyncio.run(queries(4))
        assert (selects(), spans()) == (7, 9)
        upstream.uninstrument()
        asyncio.run(queries(1))
        assert (selects(), spans()) == (8, 9)
        covet.uninstrument()
        asyncio.run(queries(1))
        assert (selects(), spans()) == (8, 9)
        assert asyncpg.connection.Connection.__dict__["fetchval"] is original
    finally:
        if upstream.is_instrumented_by_opentelemetry:
            upstream.uninstrument()
        if covet.is_instrumented_by_opentelemetry:
            covet.uninstrument()


def test_instrument_and_uninstrument_are_symmetric(database, metrics) -> None:
    name, dsn = database
    targets = covet_asyncpg_module._targets()
    originals = [(owner, attr, owner.__dict__[attr]) for owner, attr, _ in targets]
    gauge = instruments.gauge("covet_db_pool_size")
    callbacks_before = len(gauge.callbacks)
    instrumentor = AsyncpgMetricsInstrumentor()
    instrumentor.instrument()
    assert all(owner.__dict__[attr] is not original for owner, attr, original in originals)
    assert len(gauge.callbacks) == callbacks_before + 1
    instrumentor.uninstrument()
    assert all(owner.__dict__[attr] is original for owner, attr, original in originals)
    assert len(gauge.callbacks) == callbacks_before

    async def main() -> None:
        conn = await asyncpg.connect(dsn)
        await conn.fetchval("SELECT 1")
        await conn.close()

    asyncio.run(main())
    assert metrics.scrape().get(QUERY_COUNT, pool=name, operation="SELECT", outcome="success") == 0


def test_covet_enabled_false_leaves_asyncpg_untouched(metrics) -> None:
    import dataclasses

    from covet_otel import settings as settings_module

    originals = [(owner, attr, owner.__dict__[attr]) for owner, attr, _ in covet_asyncpg_module._targets()]
    before = settings_module.current()
    settings_module.set_current(dataclasses.replace(before, enabled=False))
    instrumentor = AsyncpgMetricsInstrumentor()
    try:
        instrumentor.instrument()
        assert all(owner.__dict__[attr] is original for owner, attr, original in originals)
    finally:
        instrumentor.uninstrument()
        settings_module.set_current(before)


def test_uncounted_statements(covet_asyncpg, database, metrics) -> None:
    from covet_otel.instrumentation.asyncpg import uncounted

    name, dsn = database

    async def main() -> None:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        with uncounted():
            assert await pool.fetchval("SELECT 1") == 1
        assert await pool.fetchval("SELECT 2") == 2
        await pool.close()

    asyncio.run(main())
    s = metrics.scrape()
    assert s.value(QUERY_COUNT, pool=name, operation="SELECT", outcome="success") == 1
    # the acquire is still the pool's: it is counted
    assert s.value("covet_db_pool_acquire_duration_seconds_count", pool=name, outcome="success") == 2
