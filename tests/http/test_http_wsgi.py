"""WSGI: Flask apps instrumented in this process and hand-wrapped WSGI apps, read from /metrics."""

from __future__ import annotations

import httpx
import pytest
from http_helpers import http_series, load_app_module, request_counts

from covet_otel.instrumentation.http import CovetWSGIMiddleware


def drive(app, *requests: tuple) -> list[httpx.Response]:
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://test") as c:
        return [c.request(r[0], r[1], **(r[2] if len(r) > 2 else {})) for r in requests]


def test_flask_counts_by_rule_method_status(metrics, flask_instrumentor) -> None:
    app = load_app_module("covet_flask_app").app
    responses = drive(
        app,
        ("GET", "/items/1"),
        ("GET", "/items/2"),
        ("POST", "/items", {"content": b"q" * 500}),
        ("GET", "/nowhere"),
        ("PROPFIND", "/items/1"),
        ("GET", "/health"),
    )
    assert [r.status_code for r in responses] == [200, 200, 200, 404, 405, 200]
    samples = metrics.scrape()
    assert request_counts(samples) == {
        ("GET", "/items/<int:item_id>", "200"): 2,
        ("POST", "/items", "200"): 1,
        ("GET", "unmatched", "404"): 1,
        ("_OTHER", "unmatched", "405"): 1,
    }
    assert samples.value("covet_http_request_body_size_bytes_sum", method="POST", route="/items") == 500
    assert samples.value(
        "covet_http_response_body_size_bytes_sum", method="POST", route="/items", status_code="200"
    ) == len(responses[2].content)
    assert samples.value("covet_http_requests_in_flight", method="GET") == 0


def test_flask_raising_handler_counts_500_and_keeps_flasks_response(metrics, flask_instrumentor) -> None:
    app = load_app_module("covet_flask_app").app
    bare = load_app_module("covet_flask_app").app
    [response] = drive(app, ("GET", "/boom"))
    flask_instrumentor.uninstrument()
    try:
        [bare_response] = drive(bare, ("GET", "/boom"))
    finally:
        flask_instrumentor.instrument()
    assert response.status_code == bare_response.status_code == 500
    assert response.content == bare_response.content
    assert b"Internal Server Error" in response.content
    samples = metrics.scrape()
    assert samples.value("covet_http_requests_total", method="GET", route="/boom", status_code="500") == 1
    assert samples.value("covet_http_exceptions_total", method="GET", route="/boom") == 1
    assert http_series(samples, "covet_http_exceptions_total") == [{"method": "GET", "route": "/boom"}]


def test_flask_streaming_and_auth(metrics, flask_instrumentor) -> None:
    module = load_app_module("covet_flask_app")
    responses = drive(
        module.app, ("GET", "/stream"), ("GET", "/private"), ("GET", "/admin"), ("POST", "/login")
    )
    assert [r.status_code for r in responses] == [200, 401, 403, 401]
    assert responses[0].content == b"x" * 300
    samples = metrics.scrape()
    labels = {"method": "GET", "route": "/stream", "status_code": "200"}
    stream_time = module.STREAM_CHUNKS * module.STREAM_PAUSE
    assert stream_time <= samples.value("covet_http_request_duration_seconds_sum", **labels) < stream_time + 1
    assert samples.value("covet_http_response_body_size_bytes_sum", **labels) == 300
    assert samples.value("covet_app_auth_failures_total", reason="unauthorized") == 1
    assert samples.value("covet_app_auth_failures_total", reason="forbidden") == 1
    assert samples.value("covet_app_auth_failures_total", reason="bad_password") == 1
    assert samples.total("covet_app_auth_failures_total") == 3


def test_flask_uninstrument_is_symmetric(metrics, flask_instrumentor) -> None:
    from flask import Flask

    app = load_app_module("covet_flask_app").app
    drive(app, ("GET", "/items/1"))
    flask_instrumentor.uninstrument()
    try:
        assert not hasattr(Flask.wsgi_app, "__wrapped__")
        drive(app, ("GET", "/items/2"))
    finally:
        flask_instrumentor.instrument()
    samples = metrics.scrape()
    assert http_series(samples) == [{"method": "GET", "route": "/items/<int:item_id>", "status_code": "200"}]
    assert samples.value("covet_http_requests_total", **http_series(samples)[0]) == 1


class _Boom(Exception):
    pass


def _plain_app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/raise":
        raise ERROR
    if path == "/broken-stream":

        def body():
            yield b"partial"
            raise ERROR

        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()
    start_response("201 Created", [("Content-Type", "text/plain")])
    return [b"made ", b"it"]


ERROR = _Boom("the very same object")


def _route_for(environ) -> str | None:
    return {"/things/1": "/things/{id}", "/raise": "/raise", "/broken-stream": "/broken-stream"}.get(
        environ["PATH_INFO"]
    )


def test_by_hand_wsgi_middleware(metrics) -> None:
    app = CovetWSGIMiddleware(_plain_app, route_for=_route_for, excluded_paths=("/skip",))
    responses = drive(app, ("PUT", "/things/1"), ("GET", "/anything"), ("GET", "/skip/this"))
    assert [r.content for r in responses] == [b"made it"] * 3
    samples = metrics.scrape()
    assert (
        samples.value("covet_http_requests_total", method="PUT", route="/things/{id}", status_code="201") == 1
    )
    assert samples.value("covet_http_requests_total", method="GET", route="unmatched", status_code="201") == 1
    assert samples.total("covet_http_requests_total") == 2
    assert (
        samples.value(
            "covet_http_response_body_size_bytes_sum", method="PUT", route="/things/{id}", status_code="201"
        )
        == 7
    )


def test_wsgi_exceptions_propagate_unchanged_and_count_500(metrics) -> None:
    app = CovetWSGIMiddleware(_plain_app, route_for=_route_for)
    with pytest.raises(_Boom) as caught:
        drive(app, ("GET", "/raise"))
    assert caught.value is ERROR
    with pytest.raises(_Boom) as caught:
        drive(app, ("GET", "/broken-stream"))
    assert caught.value is ERROR
    samples = metrics.scrape()
    assert samples.value("covet_http_requests_total", method="GET", route="/raise", status_code="500") == 1
    assert samples.value("covet_http_exceptions_total", method="GET", route="/raise") == 1
    assert (
        samples.value("covet_http_requests_total", method="GET", route="/broken-stream", status_code="500")
        == 1
    )
    assert samples.value("covet_http_exceptions_total", method="GET", route="/broken-stream") == 1
    assert samples.value("covet_http_requests_in_flight", method="GET") == 0
