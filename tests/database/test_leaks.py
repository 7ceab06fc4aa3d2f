"""Leak detection: held too long, dropped without release; counted once, one warning with the site."""

from __future__ import annotations

import asyncio
import logging
import sys

import asyncpg
import pytest

from covet_otel import instruments
from covet_otel.instrumentation.asyncpg import name_pool

LEAKED = "covet_db_connections_leaked_total"


@pytest.fixture
def warnings_(caplog):
    caplog.set_level(logging.WARNING, logger="covet_otel")
    return caplog


def leak_warnings(caplog, pool: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if f"asyncpg pool {pool!r}" in r.getMessage()]


def test_a_held_connection_becomes_a_leak_once(covet_asyncpg, database, metrics, warnings_) -> None:
    _, dsn = database  # COVET_DB_LEAK_SECONDS=0.5 (fixture)
    seen = {}

    async def main() -> None:
        pool = await name_pool(asyncpg.create_pool(dsn, min_size=1, max_size=2), "held")
        conn, seen["line"] = await pool.acquire(), sys._getframe().f_lineno
        seen["early"] = metrics.scrape()
        await asyncio.sleep(0.7)
        seen["late"] = metrics.scrape()
        seen["again"] = metrics.scrape()
        # detection never releases or closes: the connection still works and is still checked out
        assert await conn.fetchval("SELECT 1") == 1
        seen["active"] = metrics.scrape().value("covet_db_connections_active", pool="held")
        await pool.release(conn)
        await pool.close()

    asyncio.run(main())
    assert seen["early"].value(LEAKED, pool="held", reason="held_too_long") == 0
    assert seen["early"].value("covet_db_pool_health_status", pool="held") == 1
    for key in ("late", "again"):
        assert seen[key].value(LEAKED, pool="held", reason="held_too_long") == 1
        assert seen[key].value(LEAKED, pool="held", reason="not_released") == 0
    assert seen["late"].value("covet_db_pool_health_status", pool="held") == 0.5
    assert seen["active"] == 1
    messages = leak_warnings(warnings_, "held")
    assert len(messages) == 1
    assert f"{__file__}:{seen['line']}" in messages[0]
    assert "COVET_DB_LEAK_SECONDS" in messages[0]


def test_a_connection_dropped_without_release_counts_not_released(
    covet_asyncpg, database, metrics, warnings_
) -> None:
    _, dsn = database
    seen = {}

    async def forgetful(pool: asyncpg.Pool) -> None:
        conn, seen["line"] = await pool.acquire(), sys._getframe().f_lineno
        await conn.fetchval("SELECT 1")  # ... and returns without pool.release(conn)

    async def main() -> None:
        pool = await name_pool(asyncpg.create_pool(dsn, min_size=1, max_size=2), "dropped")
        async with pool.acquire() as kept:  # a connection the app still holds is no leak
            await forgetful(pool)
            seen["dropped"] = metrics.scrape()
            await asyncio.sleep(0.7)  # past COVET_DB_LEAK_SECONDS: still counted once only
            seen["later"] = metrics.scrape()
            await kept.fetchval("SELECT 1")
        pool.terminate()

    asyncio.run(main())
    for key in ("dropped", "later"):
        assert seen[key].value(LEAKED, pool="dropped", reason="not_released") == 1
    # `kept` was held past the limit as well: that one is held_too_long
    assert seen["dropped"].value(LEAKED, pool="dropped", reason="held_too_long") == 0
    assert seen["later"].value(LEAKED, pool="dropped", reason="held_too_long") == 1
    messages = leak_warnings(warnings_, "dropped")
    assert len(messages) == 2
    assert f"{__file__}:{seen['line']}" in messages[0]
    assert "dropped without being released" in messages[0]


def test_leaks_are_detected_on_acquire_without_any_scrape(covet_asyncpg, database, metrics) -> None:
    _, dsn = database

    async def main() -> None:
        pool = await name_pool(asyncpg.create_pool(dsn, min_size=1, max_size=2), "unscraped")
        conn = await pool.acquire()
        await asyncio.sleep(0.6)
        async with pool.acquire():
            pass
        await pool.release(conn)
        await pool.close()

    asyncio.run(main())
    series = instruments.counter(LEAKED).series(("unscraped", "held_too_long"))
    assert series.value == 1


def test_released_connections_never_count(covet_asyncpg, database, metrics, warnings_) -> None:
    _, dsn = database

    async def main() -> None:
        pool = await name_pool(asyncpg.create_pool(dsn, min_size=1, max_size=2), "tidy")
        conn = await pool.acquire()
        await pool.release(conn)
        async with pool.acquire() as other:
            await other.fetchval("SELECT 1")
        del conn, other  # released proxies the app dropped are not "dropped without release"
        await asyncio.sleep(0.7)  # past COVET_DB_LEAK_SECONDS since both acquires
        seen = metrics.scrape()
        assert seen.value(LEAKED, pool="tidy", reason="held_too_long") == 0
        assert seen.value(LEAKED, pool="tidy", reason="not_released") == 0
        assert seen.value("covet_db_pool_health_status", pool="tidy") == 1
        await pool.close()

    asyncio.run(main())
    assert leak_warnings(warnings_, "tidy") == []
