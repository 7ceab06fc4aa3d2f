"""Django: the WSGI and ASGI handlers instrumented in this process, read from /metrics."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import httpx
import pytest
from http_helpers import APPS, http_series, request_counts

django = pytest.importorskip("django")


@pytest.fixture(scope="module")
def django_app() -> None:
    from django.conf import settings

    if not settings.configured:
        sys.path.insert(0, str(APPS))
        settings.configure(
            ROOT_URLCONF="covet_django_urls",
            DEBUG=False,
            ALLOWED_HOSTS=["*"],
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            LOGGING_CONFIG=None,
        )
        django.setup()


@pytest.fixture
def django_instrumentor(django_app) -> Iterator[object]:
    from covet_otel.instrumentation.http.frameworks import DjangoMetricsInstrumentor

    instrumentor = DjangoMetricsInstrumentor()
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


def test_django_wsgi(metrics, django_instrumentor) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    with httpx.Client(transport=httpx.WSGITransport(app=WSGIHandler()), base_url="http://test") as c:
        statuses = [
            c.get("/items/1").status_code,
            c.get("/items/2").status_code,
            c.get("/api/users/ann").status_code,
            c.get("/nope").status_code,
            c.get("/boom").status_code,
            c.get("/private").status_code,
            c.post("/login").status_code,
        ]
        body = c.get("/stream").content
    assert statuses == [200, 200, 200, 404, 500, 401, 401]
    assert body == b"x" * 300
    samples = metrics.scrape()
    assert request_counts(samples) == {
        ("GET", "/items/<int:item_id>", "200"): 2,
        ("GET", "/api/users/<slug:name>", "200"): 1,
        ("GET", "unmatched", "404"): 1,
        ("GET", "/boom", "500"): 1,
        ("GET", "/private", "401"): 1,
        ("POST", "/login", "401"): 1,
        ("GET", "/stream", "200"): 1,
    }
    assert http_series(samples, "covet_http_exceptions_total") == [{"method": "GET", "route": "/boom"}]
    assert samples.value("covet_app_auth_failures_total", reason="unauthorized") == 1
    assert samples.value("covet_app_auth_failures_total", reason="bad_password") == 1
    stream = {"method": "GET", "route": "/stream", "status_code": "200"}
    assert samples.value("covet_http_request_duration_seconds_sum", **stream) >= 0.6


def test_django_asgi(metrics, django_instrumentor) -> None:
    from django.core.handlers.asgi import ASGIHandler

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=ASGIHandler())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return [(await c.get(p)).status_code for p in ("/items/5", "/nope", "/boom", "/private")]

    assert asyncio.run(run()) == [200, 404, 500, 401]
    samples = metrics.scrape()
    assert request_counts(samples) == {
        ("GET", "/items/<int:item_id>", "200"): 1,
        ("GET", "unmatched", "404"): 1,
        ("GET", "/boom", "500"): 1,
        ("GET", "/private", "401"): 1,
    }
    assert samples.value("covet_http_exceptions_total", method="GET", route="/boom") == 1


def test_django_uninstrument(metrics, django_instrumentor) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    django_instrumentor.uninstrument()
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=WSGIHandler()), base_url="http://test") as c:
            assert c.get("/items/1").status_code == 200
    finally:
        django_instrumentor.instrument()
    assert http_series(metrics.scrape()) == []
