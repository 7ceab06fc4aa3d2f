"""Health checks against real PostgreSQL and Redis: failures, freezes, single flight, exposure."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import time
from collections.abc import Iterator

import asyncpg
import httpx
import psutil
import pytest
import redis
import redis.asyncio as aioredis
from health_helpers import CountingPool, checks_of, client, frozen, run

from covet_otel import instruments
from covet_otel.health import (
    HealthRegistry,
    database_check,
    disk_check,
    error_rate_check,
    health_asgi_app,
    memory_check,
    pool_check,
    redis_check,
    serve,
)

TOKEN = "probe-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REAL_CHECKS = {
    "database:responseTime",
    "database:connections",
    "redis:responseTime",
    "disk:utilization",
    "memory:utilization",
    "http:errorRate",
}


def full_registry(pool, redis_client, **options) -> HealthRegistry:
    registry = HealthRegistry(**options)
    registry.add(database_check(pool))
    registry.add(pool_check(pool))
    registry.add(redis_check(redis_client))
    # thresholds above anything this machine reaches: this registry is about the backends
    registry.add(disk_check("/", warn_at=99.9, fail_at=100))
    registry.add(memory_check(warn_at=99.9, fail_at=100))
    registry.add(error_rate_check())
    return registry


def test_all_checks_pass_on_real_backends(postgres, redis_server, metrics) -> None:
    async def main() -> None:
        pool = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=4)
        r = aioredis.from_url(redis_server.url)
        try:
            app = health_asgi_app(full_registry(pool, r, cache_seconds=60, timeout=2), token=TOKEN)
            async with client(app) as c:
                response = await c.get("/health", headers=AUTH)
                ready = await c.get("/health/ready")
                startup = await c.get("/health/startup")
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "pass"
            checks = checks_of(response)
            assert set(checks) == REAL_CHECKS
            assert {entry["status"] for entry in checks.values()} == {"pass"}
            db = checks["database:responseTime"]
            assert db["componentType"] == "datastore"
            assert db["observedUnit"] == "ms" and 0 < db["observedValue"] < 2000
            assert checks["redis:responseTime"]["observedUnit"] == "ms"
            assert checks["database:connections"]["observedUnit"] == "%"
            assert ready.status_code == 200 and set(checks_of(ready)) == {
                "database:responseTime",
                "redis:responseTime",
            }
            assert startup.status_code == 200
        finally:
            await pool.close()
            await r.aclose()

    run(main())
    samples = metrics.scrape()
    for name in REAL_CHECKS:
        assert samples.value("covet_health_check_status", check=name) == 1.0
        assert samples.value("covet_health_check_duration_seconds_count", check=name) == 1.0


def test_redis_stopped_fails_readiness_but_not_liveness(postgres, fresh_redis, metrics) -> None:
    async def main() -> None:
        pool = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
        r = aioredis.from_url(fresh_redis.url)
        registry = HealthRegistry(cache_seconds=0.05, timeout=2)
        registry.add(database_check(pool))
        registry.add(redis_check(r))
        try:
            async with client(health_asgi_app(registry, token=TOKEN)) as c:
                assert (await c.get("/health/ready")).status_code == 200
                fresh_redis.stop()
                await asyncio.sleep(0.1)
                ready = await c.get("/health/ready", headers=AUTH)
                live = await c.get("/health/live")
                assert ready.status_code == 503
                assert ready.json()["status"] == "fail"
                checks = checks_of(ready)
                assert checks["redis:responseTime"]["status"] == "fail"
                assert "output" in checks["redis:responseTime"]
                assert checks["database:responseTime"]["status"] == "pass"
                assert live.status_code == 200 and live.json() == {"status": "pass"}
                # the scrape shows it while Redis is down
                samples = metrics.scrape()
                assert samples.value("covet_health_check_status", check="redis:responseTime") == 0.0
                assert samples.value("covet_health_check_status", check="database:responseTime") == 1.0
                fresh_redis.start()
                await asyncio.sleep(0.1)
                assert (await c.get("/health/ready")).status_code == 200
        finally:
            await pool.close()
            await r.aclose()

    run(main())
    assert metrics.scrape().value("covet_health_check_status", check="redis:responseTime") == 1.0


@pytest.fixture(params=["bare", "instrumented"])
def asyncpg_mode(request) -> Iterator[str]:
    """asyncpg as is, and with the covet and upstream asyncpg instrumentors wrapping the pool."""
    if request.param == "bare":
        yield "bare"
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    from covet_otel.instrumentation.asyncpg import AsyncpgMetricsInstrumentor

    instrumentors = [AsyncpgMetricsInstrumentor(), AsyncPGInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument()
    try:
        yield "instrumented"
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()


def test_frozen_postgres_fails_within_the_timeout_then_recovers(
    fresh_postgres, redis_server, asyncpg_mode
) -> None:
    timeout = 1.0

    async def probe(c: httpx.AsyncClient) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = await c.get("/health/ready", headers=AUTH)
        return response, time.monotonic() - started

    async def main() -> None:
        pool = await asyncpg.create_pool(fresh_postgres.dsn, min_size=2, max_size=2)
        registry = HealthRegistry(cache_seconds=0.05, timeout=timeout)
        registry.add(database_check(pool))
        registry.add(redis_check(url=redis_server.url))
        try:
            async with client(health_asgi_app(registry, token=TOKEN)) as c:
                assert (await c.get("/health/ready")).status_code == 200
                with frozen(fresh_postgres):
                    for _ in range(3):  # every round while frozen: fail at the timeout, never a hang
                        await asyncio.sleep(0.1)
                        response, elapsed = await probe(c)
                        assert response.status_code == 503
                        checks = checks_of(response)
                        assert checks["database:responseTime"]["status"] == "fail"
                        assert checks["redis:responseTime"]["status"] == "pass"
                        assert elapsed < timeout + 0.5
                deadline = time.monotonic() + 15
                while True:
                    await asyncio.sleep(0.1)
                    response, _ = await probe(c)
                    if response.status_code == 200:
                        break
                    assert time.monotonic() < deadline, response.text
                assert checks_of(response)["database:responseTime"]["status"] == "pass"
            # the pool is not wedged: every slot still serves the application
            async with pool.acquire() as a, pool.acquire() as b:
                assert await a.fetchval("SELECT 1") == 1 and await b.fetchval("SELECT 2") == 2
        finally:
            pool.terminate()

    run(main())


def test_hundred_concurrent_probes_cost_one_database_round_trip_per_ttl(postgres) -> None:
    async def main() -> None:
        pool = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=4)
        counting = CountingPool(pool)
        registry = HealthRegistry(cache_seconds=1.0, timeout=2)
        registry.add(database_check(counting))
        try:
            async with client(health_asgi_app(registry)) as c:
                responses = await asyncio.gather(*(c.get("/health/ready") for _ in range(100)))
                assert [r.status_code for r in responses] == [200] * 100
                assert counting.round_trips == 1
                more = await asyncio.gather(*(c.get("/health") for _ in range(100)))
                assert {r.status_code for r in more} == {200}
                assert counting.round_trips == 1  # still within the TTL
                await asyncio.sleep(1.1)
                await asyncio.gather(*(c.get("/health/ready") for _ in range(100)))
                assert counting.round_trips == 2
        finally:
            await pool.close()

    run(main())


def test_standalone_server_queries_the_pool_on_its_own_loop(postgres) -> None:
    """The standalone server's probes arrive on threads; the pool belongs to the app's loop."""

    async def main() -> None:
        pool = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
        counting = CountingPool(pool)
        registry = HealthRegistry(cache_seconds=30, timeout=2)
        registry.add(database_check(counting))
        server = serve(0, registry=registry)
        barrier = threading.Barrier(25)

        def probe() -> httpx.Response:
            with httpx.Client(timeout=10) as c:
                barrier.wait()
                return c.get(server.url + "/health/ready", headers=AUTH)

        try:
            loop = asyncio.get_running_loop()
            with concurrent.futures.ThreadPoolExecutor(25) as threads:
                responses = await asyncio.gather(*(loop.run_in_executor(threads, probe) for _ in range(25)))
            assert [r.status_code for r in responses] == [200] * 25
            assert counting.round_trips == 1
        finally:
            server.stop()
            await pool.close()

    run(main())


def test_dsn_and_exception_text_never_shown_without_the_token(postgres, free_port) -> None:
    closed = free_port()
    bad_dsn = f"postgresql://secretuser:hunter2@127.0.0.1:{closed}/secretdb"
    registry = HealthRegistry(cache_seconds=60, timeout=2)
    registry.add(database_check(dsn=bad_dsn))
    registry.add(database_check(dsn=postgres.dsn, name="replica:responseTime"))
    registry.add(redis_check(url=f"redis://:hunter2@127.0.0.1:{closed}/0"))

    async def main() -> None:
        async with client(health_asgi_app(registry, token=TOKEN)) as c:
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
                response = await c.get("/health", headers=headers)
                assert response.status_code == 503
                for secret in (
                    "hunter2",
                    "secretuser",
                    "secretdb",
                    "127.0.0.1",
                    str(closed),
                    "Error",
                    "postgres",
                ):
                    assert secret not in response.text, (headers, secret)
                assert checks_of(response)["replica:responseTime"]["status"] == "pass"
            detailed = await c.get("/health", headers=AUTH)
        checks = checks_of(detailed)
        assert checks["database:responseTime"]["status"] == "fail"
        assert str(closed) in checks["database:responseTime"]["output"]  # details with the token
        assert checks["redis:responseTime"]["status"] == "fail"
        assert checks["replica:responseTime"]["status"] == "pass"

    run(main())


def test_sync_redis_client_and_url(redis_server, fresh_redis) -> None:
    registry = HealthRegistry(cache_seconds=0.01, timeout=1)
    registry.add(redis_check(redis.Redis(host=redis_server.host, port=redis_server.port)))
    registry.add(redis_check(url=fresh_redis.url, name="cache:responseTime"))

    async def main() -> dict[str, str]:
        first = await registry.results()
        assert {r.name: r.result.status for r in first.runs} == {
            "redis:responseTime": "pass",
            "cache:responseTime": "pass",
        }
        with frozen(fresh_redis):
            await asyncio.sleep(0.02)
            started = time.monotonic()
            during = await registry.results()
            assert time.monotonic() - started < 2.0
        return {r.name: r.result.status for r in during.runs}

    assert run(main()) == {"redis:responseTime": "pass", "cache:responseTime": "fail"}


def test_pool_check_exhaustion_and_leaks(postgres, metrics) -> None:
    async def main() -> None:
        pool = await asyncpg.create_pool(postgres.dsn, min_size=2, max_size=2)
        registry = HealthRegistry(cache_seconds=0.01, timeout=2)
        registry.add(pool_check(pool))
        registry.add(pool_check(pool, name="strict:connections", fail_at=100, pool_label="orders"))
        try:

            async def statuses() -> dict[str, tuple[str, object]]:
                await asyncio.sleep(0.02)
                found = await registry.results()
                return {r.name: (r.result.status, r.result.observed_value) for r in found.runs}

            assert await statuses() == {
                "database:connections": ("pass", 0.0),
                "strict:connections": ("pass", 0.0),
            }
            async with pool.acquire():
                assert (await statuses())["database:connections"] == ("pass", 50.0)
                async with pool.acquire():
                    assert await statuses() == {
                        "database:connections": ("warn", 100.0),
                        "strict:connections": ("fail", 100.0),
                    }
            # a leak counted by the asyncpg instrumentation (for another pool: only the unfiltered
            # check sees it)
            leaked = instruments.counter("covet_db_connections_leaked_total")
            leaked.series(("main", "held_too_long")).add(1)
            assert await statuses() == {
                "database:connections": ("warn", 0.0),
                "strict:connections": ("pass", 0.0),
            }
            leaked.series(("orders", "not_released")).add(1)
            assert (await statuses())["strict:connections"] == ("warn", 0.0)
        finally:
            await pool.close()

    run(main())


def test_error_rate_check_reads_http_requests_of_the_last_window(metrics) -> None:
    requests = instruments.counter("covet_http_requests_total")
    requests.series(("GET", "/old", "500")).add(1000)  # before the check existed: not in its window
    registry = HealthRegistry(cache_seconds=0.01, timeout=1)
    # a window long enough that a loaded CI machine cannot stretch the steps below past it
    registry.add(error_rate_check(window_seconds=2.0, min_requests=10))

    def result() -> tuple[str, object]:
        time.sleep(0.02)
        found = run(registry.results()).runs[0].result
        return found.status, found.observed_value

    assert result() == ("pass", 0.0)
    requests.series(("GET", "/items/{id}", "200")).add(95)
    requests.series(("POST", "/orders", "503")).add(5)
    assert result() == ("warn", 5.0)
    requests.series(("GET", "/items/{id}", "500")).add(50)
    assert result() == ("fail", 36.667)  # 55 of 150 in the window
    time.sleep(2.1)
    requests.series(("GET", "/items/{id}", "200")).add(5)  # few requests in the new window
    assert result() == ("pass", 0.0)


def test_disk_and_memory_thresholds() -> None:
    registry = HealthRegistry(cache_seconds=60, timeout=2)
    registry.add(disk_check("/", warn_at=0.0, fail_at=100.0))
    registry.add(memory_check(name="memory:low", warn_at=0.0, fail_at=0.0))
    registry.add(memory_check(name="memory:high"))
    found = {r.name: r.result for r in run(registry.results()).runs}
    assert found["disk:utilization"].status == "warn"
    assert found["disk:utilization"].component_id == "/"
    assert 0 < found["disk:utilization"].observed_value < 100
    assert found["memory:low"].status == "fail"
    # the default thresholds (warn 90 %, fail 95 %) applied to what the check observed, and what
    # it observed is the machine's memory use as psutil reads it (other processes move it a little)
    high = found["memory:high"]
    expected = "fail" if high.observed_value >= 95 else "warn" if high.observed_value >= 90 else "pass"
    assert high.status == expected
    assert abs(high.observed_value - psutil.virtual_memory().percent) < 5
    assert high.observed_unit == "%"
    assert high.output == f"{high.observed_value:.1f}% of memory in use"


def test_demo_app_health_endpoints_in_a_real_server(
    postgres, redis_server, instrumented_app, free_port
) -> None:
    port = free_port()
    app = instrumented_app(
        [sys.executable, "tests/health/apps/demo_server.py"],
        env={
            "DEMO_DATABASE_URL": postgres.dsn,
            "DEMO_REDIS_URL": redis_server.url,
            "DEMO_PORT": str(port),
            "COVET_HEALTH_TOKEN": TOKEN,
        },
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            ready = httpx.get(base + "/health/ready", timeout=5)
            if ready.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the demo's /health/ready never answered 200"
        time.sleep(0.2)
    everything = httpx.get(base + "/health/", headers=AUTH, timeout=5)
    assert everything.status_code == 200
    checks = checks_of(everything)
    assert set(checks) == REAL_CHECKS
    assert checks["database:responseTime"]["status"] == "pass"
    assert checks["redis:responseTime"]["status"] == "pass"
    assert httpx.get(base + "/health/live", timeout=5).json() == {"status": "pass"}
    assert httpx.get(base + "/health/startup", timeout=5).status_code == 200
    plain = httpx.get(base + "/health/", timeout=5).text
    assert postgres.dsn not in plain and "127.0.0.1" not in plain
    samples = app.scrape()
    assert samples.value("covet_health_check_status", check="database:responseTime") == 1.0
    assert samples.value("covet_health_check_status", check="redis:responseTime") == 1.0
