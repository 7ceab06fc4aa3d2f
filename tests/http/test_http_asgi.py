"""ASGI: FastAPI and Starlette apps instrumented in this process, driven with httpx, read from /metrics."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from http_helpers import http_series, load_app_module, request_counts

from covet_otel.instrumentation.http import CovetASGIMiddleware, record_auth_failure


def client(app, raise_app_exceptions: bool = False) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def drive(app, *requests: tuple[str, str] | tuple[str, str, dict]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        async with client(app) as c:
            return [await c.request(r[0], r[1], **(r[2] if len(r) > 2 else {})) for r in requests]

    return asyncio.run(run())


def test_counts_by_route_method_status(metrics, starlette_instrumentor) -> None:
    app = load_app_module("covet_fastapi_app").app
    responses = drive(
        app,
        ("GET", "/items/1"),
        ("GET", "/items/2"),
        ("GET", "/items/3"),
        ("POST", "/items", {"content": b"a" * 1000}),
        ("POST", "/items", {"content": b"b" * 10}),
        ("PUT", "/items/1"),
        ("PROPFIND", "/items/1"),
        ("GET", "/items/not-a-number"),
    )
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 405, 405, 422]
    samples = metrics.scrape()
    expected = {
        ("GET", "/items/{item_id}", "200"): 3,
        ("POST", "/items", "200"): 2,
        ("PUT", "/items/{item_id}", "405"): 1,
        ("_OTHER", "/items/{item_id}", "405"): 1,
        ("GET", "/items/{item_id}", "422"): 1,
    }
    assert request_counts(samples) == expected
    for (method, route, status), count in expected.items():
        labels = {"method": method, "route": route, "status_code": status}
        assert samples.value("covet_http_request_duration_seconds_count", **labels) == count
        assert samples.value("covet_http_response_body_size_bytes_count", **labels) == count
    assert samples.value("covet_http_request_body_size_bytes_sum", method="POST", route="/items") == 1010
    assert samples.value("covet_http_request_body_size_bytes_count", method="POST", route="/items") == 2
    # {"received":1000} and {"received":10}
    assert samples.value(
        "covet_http_response_body_size_bytes_sum", method="POST", route="/items", status_code="200"
    ) == len(b'{"received":1000}') + len(b'{"received":10}')
    assert samples.value("covet_http_requests_in_flight", method="GET") == 0
    assert samples.value("covet_http_exceptions_total", method="GET", route="/items/{item_id}") == 0


def test_ten_thousand_distinct_paths_make_one_series(metrics, starlette_instrumentor) -> None:
    app = load_app_module("covet_fastapi_app").app

    async def run() -> None:
        async with client(app) as c:
            for i in range(10_000):
                response = await c.get(f"/items/{i}")
                assert response.status_code == 200

    asyncio.run(run())
    samples = metrics.scrape()
    assert http_series(samples) == [{"method": "GET", "route": "/items/{item_id}", "status_code": "200"}]
    labels = {"method": "GET", "route": "/items/{item_id}", "status_code": "200"}
    assert samples.value("covet_http_requests_total", **labels) == 10_000
    assert samples.value("covet_http_request_duration_seconds_count", **labels) == 10_000
    assert http_series(samples, "covet_http_request_body_size_bytes_count") == [
        {"method": "GET", "route": "/items/{item_id}"}
    ]
    # no series anywhere (zeroed ones from earlier tests included) carries a raw path
    assert not [s for s in samples.series("covet_http_requests_total") if s["route"].startswith("/items/1")]


def test_unknown_path_uses_fixed_route(metrics, starlette_instrumentor) -> None:
    app = load_app_module("covet_fastapi_app").app
    responses = drive(app, ("GET", "/no/such/path"), ("GET", "/another/one"), ("DELETE", "/x/y/z"))
    assert [r.status_code for r in responses] == [404, 404, 404]
    samples = metrics.scrape()
    assert samples.value("covet_http_requests_total", method="GET", route="unmatched", status_code="404") == 2
    assert (
        samples.value("covet_http_requests_total", method="DELETE", route="unmatched", status_code="404") == 1
    )
    assert {s["route"] for s in http_series(samples)} == {"unmatched"}


def test_raising_handler_counts_500_and_keeps_the_apps_response(metrics, starlette_instrumentor) -> None:
    module = load_app_module("covet_fastapi_app")
    bare = load_app_module("covet_fastapi_app")
    [response] = drive(module.app, ("GET", "/boom"))
    starlette_instrumentor.uninstrument()
    try:
        [bare_response] = drive(bare.app, ("GET", "/boom"))
    finally:
        starlette_instrumentor.instrument()
    assert response.status_code == bare_response.status_code == 500
    assert response.json() == bare_response.json() == {"error": "custom", "detail": "kaboom"}
    assert response.headers == bare_response.headers
    samples = metrics.scrape()
    assert samples.value("covet_http_requests_total", method="GET", route="/boom", status_code="500") == 1
    assert samples.value("covet_http_exceptions_total", method="GET", route="/boom") == 1


def test_exception_propagates_unchanged(metrics, starlette_instrumentor) -> None:
    from fastapi import FastAPI

    error = LookupError("the very same object")
    app = FastAPI()

    @app.get("/raise")
    async def raising() -> None:
        raise error

    async def run() -> None:
        async with client(app, raise_app_exceptions=True) as c:
            await c.get("/raise")

    with pytest.raises(LookupError) as caught:
        asyncio.run(run())
    assert caught.value is error
    samples = metrics.scrape()
    assert samples.value("covet_http_requests_total", method="GET", route="/raise", status_code="500") == 1


def test_streaming_duration_covers_the_stream(metrics, starlette_instrumentor) -> None:
    module = load_app_module("covet_fastapi_app")
    [response] = drive(module.app, ("GET", "/stream"))
    assert response.content == b"x" * 300
    samples = metrics.scrape()
    labels = {"method": "GET", "route": "/stream", "status_code": "200"}
    stream_time = module.STREAM_CHUNKS * module.STREAM_PAUSE
    assert samples.value("covet_http_request_duration_seconds_count", **labels) == 1
    assert stream_time <= samples.value("covet_http_request_duration_seconds_sum", **labels) < stream_time + 1
    assert samples.value("covet_http_request_duration_seconds_bucket", le="0.5", **labels) == 0
    assert samples.value("covet_http_request_duration_seconds_bucket", le="1.0", **labels) == 1
    assert samples.value("covet_http_response_body_size_bytes_sum", **labels) == 300


def test_in_flight_while_streaming(metrics, starlette_instrumentor) -> None:
    module = load_app_module("covet_fastapi_app")

    async def run() -> tuple[float, bytes]:
        async with client(module.app) as c:
            task = asyncio.create_task(c.get("/stream"))
            await asyncio.sleep(module.STREAM_PAUSE / 2)
            during = await asyncio.to_thread(metrics.scrape)
            response = await task
            return during.value("covet_http_requests_in_flight", method="GET"), response.content

    during, body = asyncio.run(run())
    assert during == 1
    assert body == b"x" * 300
    assert metrics.scrape().value("covet_http_requests_in_flight", method="GET") == 0


def test_auth_failures_count_once(metrics, starlette_instrumentor) -> None:
    app = load_app_module("covet_fastapi_app").app
    responses = drive(app, ("GET", "/private"), ("GET", "/admin"), ("GET", "/admin"), ("POST", "/login"))
    assert [r.status_code for r in responses] == [401, 403, 403, 401]
    samples = metrics.scrape()
    assert samples.value("covet_app_auth_failures_total", reason="unauthorized") == 1
    assert samples.value("covet_app_auth_failures_total", reason="forbidden") == 2
    # /login recorded its own reason and answered 401: one failure, under its reason only
    assert samples.value("covet_app_auth_failures_total", reason="bad_password") == 1
    assert samples.total("covet_app_auth_failures_total") == 4
    assert samples.value("covet_http_requests_total", method="POST", route="/login", status_code="401") == 1


def test_explicit_reason_once_per_request(metrics, starlette_instrumentor) -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/twice")
    async def twice() -> dict:
        record_auth_failure("expired_token")
        record_auth_failure("invalid_token")
        return {}

    drive(app, ("GET", "/twice"))
    samples = metrics.scrape()
    assert samples.value("covet_app_auth_failures_total", reason="expired_token") == 1
    assert samples.get("covet_app_auth_failures_total", reason="invalid_token") == 0
    assert samples.total("covet_app_auth_failures_total") == 1


def test_record_auth_failure_outside_a_request(metrics) -> None:
    record_auth_failure("locked_out")
    record_auth_failure("locked_out")
    record_auth_failure("not-a-catalogue-reason")
    samples = metrics.scrape()
    assert samples.value("covet_app_auth_failures_total", reason="locked_out") == 2
    assert samples.value("covet_app_auth_failures_total", reason="other") == 1


def test_excluded_paths_are_not_measured(metrics, starlette_instrumentor) -> None:
    app = load_app_module("covet_fastapi_app").app
    responses = drive(app, ("GET", "/health"), ("GET", "/metrics"), ("GET", "/items/1"))
    assert [r.status_code for r in responses] == [200, 404, 200]
    samples = metrics.scrape()
    assert http_series(samples) == [{"method": "GET", "route": "/items/{item_id}", "status_code": "200"}]

    by_hand = CovetASGIMiddleware(load_app_module("covet_fastapi_app").app, excluded_paths=("/items",))
    starlette_instrumentor.uninstrument()
    try:
        drive(by_hand, ("GET", "/items/1"), ("GET", "/health"))
    finally:
        starlette_instrumentor.instrument()
    samples = metrics.scrape()
    assert samples.value("covet_http_requests_total", method="GET", route="/health", status_code="200") == 1
    assert (
        samples.value("covet_http_requests_total", method="GET", route="/items/{item_id}", status_code="200")
        == 1
    )


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_websocket_and_lifespan_pass_through(metrics, starlette_instrumentor) -> None:
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.testclient import TestClient

    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app):
        events.append("startup")
        yield
        events.append("shutdown")

    async def echo(websocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/ws", echo)], lifespan=lifespan)
    with TestClient(app) as test_client, test_client.websocket_connect("/ws") as ws:
        ws.send_text("ping")
        assert ws.receive_text() == "ping"
    assert events == ["startup", "shutdown"]
    samples = metrics.scrape()
    assert http_series(samples) == []
    assert samples.total("covet_http_requests_in_flight") == 0


def test_mounted_app_reports_the_full_template(metrics, starlette_instrumentor) -> None:
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def page(request) -> PlainTextResponse:
        return PlainTextResponse("page")

    app = FastAPI()
    app.mount("/tenants/{tenant}", Starlette(routes=[Route("/pages/{page_id}", page)]))
    responses = drive(app, ("GET", "/tenants/acme/pages/1"), ("GET", "/tenants/other/pages/2"))
    assert [r.text for r in responses] == ["page", "page"]
    samples = metrics.scrape()
    # the mounted Starlette app has the middleware too, yet each request counts once
    assert http_series(samples) == [
        {"method": "GET", "route": "/tenants/{tenant}/pages/{page_id}", "status_code": "200"}
    ]
    assert samples.total("covet_http_requests_total") == 2


def test_chunked_request_body_is_counted(metrics, starlette_instrumentor) -> None:
    app = load_app_module("covet_fastapi_app").app

    async def chunks():
        for _ in range(3):
            yield b"z" * 50

    [response] = drive(app, ("POST", "/items", {"content": chunks()}))
    assert response.json() == {"received": 150}
    samples = metrics.scrape()
    assert samples.value("covet_http_request_body_size_bytes_sum", method="POST", route="/items") == 150


def test_a_metrics_failure_never_reaches_the_app(metrics, starlette_instrumentor, monkeypatch) -> None:
    from covet_otel.instrumentation.http import _core

    def broken(*args, **kwargs):
        raise RuntimeError("metrics bug")

    monkeypatch.setattr(_core, "_bundle", broken)
    monkeypatch.setattr(_core, "_bundles", {})
    monkeypatch.setattr(_core, "begin", broken)
    app = load_app_module("covet_fastapi_app").app
    [response] = drive(app, ("GET", "/items/7"))
    assert response.status_code == 200 and response.json() == {"item_id": 7}


def test_uninstrument_removes_the_middleware(metrics, starlette_instrumentor) -> None:
    app = load_app_module("covet_fastapi_app").app
    drive(app, ("GET", "/items/1"))
    starlette_instrumentor.uninstrument()
    try:
        drive(app, ("GET", "/items/2"))
        fresh = load_app_module("covet_fastapi_app").app
        drive(fresh, ("GET", "/items/3"))
    finally:
        starlette_instrumentor.instrument()
    samples = metrics.scrape()
    assert (
        samples.value("covet_http_requests_total", method="GET", route="/items/{item_id}", status_code="200")
        == 1
    )


def test_coexists_with_upstream_fastapi_instrumentation(metrics, starlette_instrumentor) -> None:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    upstream = FastAPIInstrumentor()
    upstream.instrument()
    try:
        app = load_app_module("covet_fastapi_app").app
        drive(app, ("GET", "/items/1"), ("GET", "/nope"))
        layers = []
        layer = app.middleware_stack
        while layer is not None and len(layers) < 20:
            layers.append(type(layer))
            layer = getattr(layer, "app", None)
    finally:
        upstream.uninstrument()
    assert OpenTelemetryMiddleware in layers and CovetASGIMiddleware in layers
    samples = metrics.scrape()
    assert (
        samples.value("covet_http_requests_total", method="GET", route="/items/{item_id}", status_code="200")
        == 1
    )
    assert samples.value("covet_http_requests_total", method="GET", route="unmatched", status_code="404") == 1


def test_covet_disabled_leaves_starlette_untouched(metrics) -> None:
    from starlette.applications import Starlette

    from covet_otel import settings
    from covet_otel.instrumentation.http.frameworks import StarletteMetricsInstrumentor

    before = settings.current()
    settings.set_current(settings.Settings(enabled=False))
    instrumentor = StarletteMetricsInstrumentor()
    try:
        instrumentor.instrument()
        assert not hasattr(Starlette.build_middleware_stack, "__wrapped__")
        drive(load_app_module("covet_fastapi_app").app, ("GET", "/items/1"))
    finally:
        instrumentor.uninstrument()
        settings.set_current(before)
    assert http_series(metrics.scrape()) == []


def test_root_path_is_not_part_of_route_or_exclusion(metrics, starlette_instrumentor) -> None:
    app = load_app_module("covet_fastapi_app").app

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app, root_path="/api")
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return [(await c.get(p)).status_code for p in ("/api/items/1", "/api/health")]

    assert asyncio.run(run()) == [200, 200]
    samples = metrics.scrape()
    assert request_counts(samples) == {("GET", "/items/{item_id}", "200"): 1}
