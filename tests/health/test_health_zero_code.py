"""Zero-code health (issue 17, point 10): an unmodified app under `opentelemetry-instrument` with
COVET_HEALTH_PORT gets the health endpoints, with checks for the asyncpg pool and the Redis server
it uses, on a real PostgreSQL and Redis; the health metrics appear on /metrics without probes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from covet_fixtures import free_tcp_port, launch

APPS = Path(__file__).parent / "apps"
TOKEN = "zero-code-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _wait(url: str, app, timeout: float = 30.0, **kwargs) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5, **kwargs)
        except httpx.HTTPError:
            assert app.proc.poll() is None, app.output()
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.2)


def _checks(response: httpx.Response) -> dict[str, dict]:
    return {name: entries[0] for name, entries in response.json()["checks"].items()}


def _until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


@pytest.fixture
def shop(postgres, fresh_redis):
    database = postgres.create_database("zero_code_shop")
    app_port, health_port = free_tcp_port(), free_tcp_port()
    app = launch(
        [
            "uvicorn",
            "unmodified_shop:app",
            "--app-dir",
            str(APPS),
            "--port",
            str(app_port),
            "--log-level",
            "warning",
        ],
        env={
            "SHOP_DATABASE_URL": database,
            "SHOP_REDIS_URL": fresh_redis.url,
            "COVET_HEALTH_PORT": str(health_port),
            "COVET_HEALTH_HOST": "127.0.0.1",
            "COVET_HEALTH_TOKEN": TOKEN,
            "COVET_HEALTH_CACHE_SECONDS": "0.2",
            "OTEL_SERVICE_NAME": "unmodified-shop",
        },
    )
    try:
        _wait(f"http://127.0.0.1:{app_port}/items/1", app)
        yield app, f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{health_port}", fresh_redis
    finally:
        app.stop()
        postgres.drop_database("zero_code_shop")


def test_checks_are_found_for_the_apps_pool_and_redis(shop) -> None:
    app, base, health, _ = shop
    with httpx.Client(timeout=10) as c:
        assert c.get(f"{base}/items/7").json() == {"id": 7, "value": 14, "cached": False}
        details = c.get(f"{health}/health", headers=AUTH)
        assert details.status_code == 200
        assert details.headers["content-type"] == "application/health+json"
        checks = _checks(details)
        assert set(checks) == {
            "database.zero_code_shop:responseTime",
            "database.zero_code_shop:connections",
            "redis:responseTime",
            "disk:utilization",
            "memory:utilization",
        }
        assert checks["database.zero_code_shop:responseTime"]["status"] == "pass"
        assert checks["database.zero_code_shop:responseTime"]["observedUnit"] == "ms"
        assert checks["redis:responseTime"]["status"] == "pass"
        assert checks["database.zero_code_shop:connections"]["componentId"] == "zero_code_shop"
        # without the token: statuses only, and the bare /health answers directly
        plain = c.get(f"{health}/health", follow_redirects=False)
        assert plain.status_code == 200 and "observedValue" not in plain.text
        assert c.get(f"{health}/health/live").json() == {"status": "pass"}
        assert c.get(f"{health}/health/ready").status_code == 200
        assert c.get(f"{health}/health/startup").status_code == 200
    samples = app.scrape()
    for check in ("database.zero_code_shop:responseTime", "redis:responseTime", "disk:utilization"):
        assert samples.value("covet_health_check_status", check=check) == 1.0
        assert samples.value("covet_health_check_duration_seconds_count", check=check) >= 1


def test_readiness_follows_redis_down_and_back(shop) -> None:
    app, _, health, redis_server = shop

    def ready() -> httpx.Response:
        return httpx.get(f"{health}/health/ready", headers=AUTH, timeout=10)

    assert ready().status_code == 200
    redis_server.stop()
    down = _until(lambda: (r := ready()).status_code == 503 and r)
    assert down, "readiness never failed with Redis stopped"
    assert _checks(down)["redis:responseTime"]["status"] == "fail"
    assert _checks(down)["database.zero_code_shop:responseTime"]["status"] == "pass"
    assert _until(lambda: app.scrape().value("covet_health_check_status", check="redis:responseTime") == 0.0)
    redis_server.start()
    assert _until(lambda: ready().status_code == 200), "readiness never recovered"


def test_metrics_appear_without_any_probe(shop) -> None:
    """The health dashboards read covet_health_check_status: it must exist even when nothing probes."""
    app, base, _, _ = shop
    httpx.get(f"{base}/items/3", timeout=10)
    samples = _until(
        lambda: (
            (s := app.scrape()).get("covet_health_check_status", -1, check="redis:responseTime") == 1.0 and s
        ),
        timeout=25,
    )
    assert samples, "no health round ran without probes"
    assert samples.value("covet_health_check_status", check="database.zero_code_shop:responseTime") == 1.0
    assert samples.value("covet_health_check_status", check="memory:utilization") in (1.0, 0.5)


def test_an_unusable_health_port_is_a_startup_error() -> None:
    import subprocess
    import sys

    launcher = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    done = subprocess.run(
        [launcher, sys.executable, "-c", "print('app ran')"],
        env={"PATH": "/usr/bin:/bin", "COVET_HEALTH_PORT": "80_80"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "COVET_HEALTH_PORT='80_80' is not valid: expected a port number, 0-65535" in done.stderr
