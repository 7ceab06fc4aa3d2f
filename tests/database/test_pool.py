"""Pool metrics: sizes, acquire waits and timeouts, the `pool` label and pool health."""

from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import urlsplit

import asyncpg
import pytest

from covet_otel import settings as settings_module
from covet_otel.instrumentation.asyncpg import name_pool

ACQUIRE_COUNT = "covet_db_pool_acquire_duration_seconds_count"
ACQUIRE_SUM = "covet_db_pool_acquire_duration_seconds_sum"


@pytest.fixture
def no_leaks():
    """Holding connections for a second is the point of these tests, not a leak."""
    settings_module.set_current(dataclasses.replace(settings_module.current(), db_leak_seconds=60.0))


def gauges(samples, pool: str) -> dict[str, float]:
    names = {
        "active": "covet_db_connections_active",
        "idle": "covet_db_connections_idle",
        "size": "covet_db_pool_size",
        "min": "covet_db_pool_min_size",
        "max": "covet_db_pool_max_size",
        "health": "covet_db_pool_health_status",
    }
    return {key: samples.value(name, pool=pool) for key, name in names.items()}


def test_three_holders_on_max_size_2(covet_asyncpg, no_leaks, database, metrics) -> None:
    _, dsn = database
    pool_name = "orders"
    seen: dict[str, dict[str, float]] = {}

    async def main() -> None:
        pool = await name_pool(asyncpg.create_pool(dsn, min_size=1, max_size=2), pool_name)
        seen["idle pool"] = gauges(metrics.scrape(), pool_name)
        first = await pool.acquire()
        second = await pool.acquire()
        seen["two held"] = gauges(metrics.scrape(), pool_name)
        waiter = asyncio.ensure_future(pool.acquire(timeout=5))
        await asyncio.sleep(0.05)
        seen["one waiting"] = gauges(metrics.scrape(), pool_name)
        with pytest.raises(asyncio.TimeoutError):
            await pool.acquire(timeout=0.2)
        await asyncio.sleep(0.3)
        await pool.release(first)
        third = await waiter
        seen["waiter served"] = gauges(metrics.scrape(), pool_name)
        await pool.release(second)
        await pool.release(third)
        seen["all released"] = gauges(metrics.scrape(), pool_name)
        await pool.close()
        seen["closed"] = gauges(metrics.scrape(), pool_name)

    asyncio.run(main())
    assert seen["idle pool"] == {"active": 0, "idle": 1, "size": 1, "min": 1, "max": 2, "health": 1}
    assert seen["two held"] == {"active": 2, "idle": 0, "size": 2, "min": 1, "max": 2, "health": 1}
    # exhausted with a waiter: warn
    assert seen["one waiting"] == {"active": 2, "idle": 0, "size": 2, "min": 1, "max": 2, "health": 0.5}
    assert seen["waiter served"] == {"active": 2, "idle": 0, "size": 2, "min": 1, "max": 2, "health": 1}
    assert seen["all released"] == {"active": 0, "idle": 2, "size": 2, "min": 1, "max": 2, "health": 1}
    assert seen["closed"] == {"active": 0, "idle": 0, "size": 0, "min": 0, "max": 0, "health": 0}

    s = metrics.scrape()
    assert s.value("covet_db_pool_acquire_timeouts_total", pool=pool_name) == 1
    assert s.value(ACQUIRE_COUNT, pool=pool_name, outcome="timeout") == 1
    assert s.value(ACQUIRE_SUM, pool=pool_name, outcome="timeout") >= 0.2
    assert s.value(ACQUIRE_COUNT, pool=pool_name, outcome="success") == 3
    # the waiter waited from before the timeout until the first release: at least 0.5 s
    assert s.value(ACQUIRE_SUM, pool=pool_name, outcome="success") >= 0.5
    assert s.value("covet_db_pool_acquire_duration_seconds_bucket", pool=pool_name, outcome="success",
                   le="0.25") == 2  # fmt: skip
    assert s.get(ACQUIRE_COUNT, pool=pool_name, outcome="error") == 0


def test_pool_label_is_the_database_name_never_user_or_host(
    covet_asyncpg, database, postgres, metrics
) -> None:
    name, dsn = database

    async def main() -> None:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        by_kwargs = await asyncpg.create_pool(
            host=postgres.host, port=postgres.port, user=postgres.user, database=name, min_size=0, max_size=1
        )
        late = await asyncpg.create_pool(dsn, min_size=0, max_size=1)
        name_pool(late, "renamed")
        try:
            await pool.fetchval("SELECT 1")
            await by_kwargs.fetchval("SELECT 1")
            await late.fetchval("SELECT 1")
        finally:
            await pool.close()
            await by_kwargs.close()
            await late.close()

    asyncio.run(main())
    s = metrics.scrape()
    # pool and by_kwargs both label as the database; late was named after creation
    assert (
        s.value("covet_db_query_duration_seconds_count", pool=name, operation="SELECT", outcome="success")
        == 2
    )
    assert s.value("covet_db_query_duration_seconds_count", pool="renamed", operation="SELECT",
                   outcome="success") == 1  # fmt: skip
    assert s.value(ACQUIRE_COUNT, pool=name, outcome="success") == 2
    # the pools this test used (series are zeroed before each test: older pools of this worker,
    # such as one on the database "postgres", stay at 0)
    labels = {dict(lbl).get("pool") for (_, lbl), value in s.samples.items() if value} - {None}
    assert {name, "renamed"} <= labels
    secret = {postgres.host, str(postgres.port), postgres.user, urlsplit(dsn).netloc}
    assert not {value for value in labels if any(part in value for part in secret)}


def test_name_pool_rejects_empty_names() -> None:
    with pytest.raises(ValueError):
        name_pool(object(), " ")


def test_pools_sharing_a_name_add_up_and_a_closed_one_does_not_count(
    covet_asyncpg, no_leaks, database, metrics
) -> None:
    _, dsn = database
    seen = {}

    async def main() -> None:
        old = await name_pool(asyncpg.create_pool(dsn, min_size=1, max_size=3), "shared")
        new = await name_pool(asyncpg.create_pool(dsn, min_size=2, max_size=4), "shared")
        held = await new.acquire()
        seen["both open"] = gauges(metrics.scrape(), "shared")
        await old.close()
        seen["old closed"] = gauges(metrics.scrape(), "shared")
        await new.release(held)
        await new.close()

    asyncio.run(main())
    assert seen["both open"] == {"active": 1, "idle": 2, "size": 3, "min": 3, "max": 7, "health": 1}
    assert seen["old closed"] == {"active": 1, "idle": 1, "size": 2, "min": 2, "max": 4, "health": 1}
