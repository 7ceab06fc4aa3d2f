"""Real servers: unmodified apps under `opentelemetry-instrument` (uvicorn, Flask's server, gunicorn)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from http_helpers import APPS, request_counts, wait_until_serving

ITEMS = 300


def _expected_requests(base: str) -> dict[tuple[str, str, str], int]:
    """Send the standard request mix to `base`; return what each (method, route, status) must count."""
    with httpx.Client(base_url=base, timeout=10) as c:
        for i in range(ITEMS):
            assert c.get(f"/items/{i}").status_code == 200
        assert c.post("/items", content=b"p" * 2048).json() == {"received": 2048}
        assert c.get("/no/such/page").status_code == 404
        assert c.get("/private").status_code == 401
        assert c.get("/admin").status_code == 403
        assert c.post("/login").status_code == 401
        assert c.get("/health").status_code == 200
        assert c.get("/stream").content == b"x" * 300
    return {
        ("GET", "ITEMS", "200"): ITEMS,
        ("POST", "/items", "200"): 1,
        ("GET", "unmatched", "404"): 1,
        ("GET", "/private", "401"): 1,
        ("GET", "/admin", "403"): 1,
        ("POST", "/login", "401"): 1,
        ("GET", "/stream", "200"): 1,
    }


def _with_route(expected: dict, items_route: str) -> dict:
    return {(m, items_route if r == "ITEMS" else r, s): n for (m, r, s), n in expected.items()}


def test_fastapi_under_uvicorn(instrumented_app, free_port) -> None:
    port = free_port()
    app = instrumented_app(
        [
            "uvicorn",
            "covet_fastapi_app:app",
            "--app-dir",
            str(APPS),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(base + "/health", app.proc)
    expected = _with_route(_expected_requests(base), "/items/{item_id}")
    boom = httpx.get(base + "/boom", timeout=10)
    assert boom.status_code == 500 and boom.json() == {"error": "custom", "detail": "kaboom"}
    expected[("GET", "/boom", "500")] = 1

    samples = app.scrape()
    assert request_counts(samples) == expected
    assert samples.value("covet_http_exceptions_total", method="GET", route="/boom") == 1
    assert samples.value("covet_http_request_body_size_bytes_sum", method="POST", route="/items") == 2048
    stream = {"method": "GET", "route": "/stream", "status_code": "200"}
    assert samples.value("covet_http_request_duration_seconds_sum", **stream) >= 0.6
    assert samples.value("covet_http_request_duration_seconds_bucket", le="0.5", **stream) == 0
    assert samples.value("covet_http_requests_in_flight", method="GET") == 0
    auth = {
        s["reason"]: samples.value("covet_app_auth_failures_total", **s)
        for s in samples.series("covet_app_auth_failures_total")
    }
    assert auth == {"unauthorized": 1, "forbidden": 1, "bad_password": 1}


def test_flask_under_its_own_server(instrumented_app, free_port) -> None:
    port = free_port()
    app = instrumented_app(
        ["flask", "--app", "covet_flask_app", "run", "--port", str(port)], env={"PYTHONPATH": str(APPS)}
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(base + "/health", app.proc)
    expected = _with_route(_expected_requests(base), "/items/<int:item_id>")
    boom = httpx.get(base + "/boom", timeout=10)
    assert boom.status_code == 500 and b"Internal Server Error" in boom.content
    expected[("GET", "/boom", "500")] = 1
    samples = app.scrape()
    assert request_counts(samples) == expected
    assert samples.value("covet_http_exceptions_total", method="GET", route="/boom") == 1
    assert samples.total("covet_app_auth_failures_total") == 3


@pytest.mark.slow
def test_gunicorn_four_workers_push_otlp(instrumented_app, free_port, prometheus_factory) -> None:
    prom = prometheus_factory()
    port = free_port()
    service = "covet-http-gunicorn"
    app = instrumented_app(
        ["gunicorn", "-w", "4", "-b", f"127.0.0.1:{port}", "--chdir", str(APPS), "covet_flask_app:app"],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": prom.otlp_endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_SERVICE_NAME": service,
            "COVET_SYSTEM_METRICS": "false",
        },
        prometheus=False,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(base + "/health", app.proc)

    expected = _with_route(_expected_requests(base), "/items/<int:item_id>")
    # concurrent slow-ish requests, so that every worker gets some
    concurrent = 400

    with httpx.Client(base_url=base, timeout=10) as shared, ThreadPoolExecutor(16) as pool:
        statuses = pool.map(lambda i: shared.get(f"/items/{i}?sleep=0.01").status_code, range(concurrent))
        assert set(statuses) == {200}
    expected[("GET", "/items/<int:item_id>", "200")] += concurrent
    sent = sum(expected.values())

    selector = f'covet_http_requests_total{{job="{service}"}}'
    prom.wait_for(f"sum({selector})", lambda r: bool(r) and float(r[0]["value"][1]) == sent, timeout=30)
    by_labels = {
        (r["metric"]["method"], r["metric"]["route"], r["metric"]["status_code"]): float(r["value"][1])
        for r in prom.query(f"sum by (method, route, status_code) ({selector})")
    }
    assert by_labels == expected
    # one series per worker, each with its own service.instance.id
    items = f'covet_http_requests_total{{job="{service}",route="/items/<int:item_id>"}}'
    workers = prom.query(f"count by (instance) ({items})")
    assert 2 <= len(workers) <= 4
    auth = prom.query(f'sum by (reason) (covet_app_auth_failures_total{{job="{service}"}})')
    assert {r["metric"]["reason"]: float(r["value"][1]) for r in auth} == {
        "unauthorized": 1,
        "forbidden": 1,
        "bad_password": 1,
    }
    stream = prom.query(f'sum(covet_http_request_duration_seconds_sum{{job="{service}",route="/stream"}})')
    assert float(stream[0]["value"][1]) >= 0.6
