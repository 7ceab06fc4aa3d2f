"""Requests that used to go unmeasured (issue 17, points 1-3 and 7), on real Starlette/FastAPI and
Flask apps: excluded paths on segment boundaries, WSGI bodies nobody closes, malformed
Content-Length, invented status codes."""

from __future__ import annotations

import asyncio
import gc

import httpx
import pytest
from http_helpers import request_counts

from covet_otel.instrumentation.http import CovetASGIMiddleware, CovetWSGIMiddleware

# Paths that share a prefix with the default exclusions (/metrics, /health) but are other paths.
LOOKALIKES = ("/healthcare/patients", "/healthz", "/metrics-export", "/health-check")
EXCLUDED = ("/health", "/health/", "/health/ready", "/metrics", "/metrics/", "/metrics/x")


def asgi_drive(app, *requests: tuple) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return [await c.request(r[0], r[1], **(r[2] if len(r) > 2 else {})) for r in requests]

    return asyncio.run(run())


def echo_starlette():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    async def echo(request) -> PlainTextResponse:
        return PlainTextResponse(request.url.path)

    async def upload(request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    async def status(request) -> Response:
        return Response(b"s", status_code=int(request.path_params["code"]))

    return Starlette(
        routes=[
            Route("/status/{code}", status),
            Route("/upload", upload, methods=["POST"]),
            Route("/{path:path}", echo),
        ]
    )


def echo_flask():
    from flask import Flask, request

    app = Flask("hardening")

    @app.get("/<path:path>")
    def echo(path: str) -> str:
        return request.path

    @app.post("/upload")
    def upload() -> str:
        return str(len(request.get_data()))

    @app.get("/status/<int:code>")
    def status(code: int):
        return "s", code

    return app


# -- point 1: exclusions match whole path segments ------------------------------------------------


def test_asgi_default_exclusions_match_on_segment_boundaries(metrics, starlette_instrumentor) -> None:
    app = echo_starlette()
    responses = asgi_drive(app, *(("GET", p) for p in LOOKALIKES + EXCLUDED))
    assert [r.text for r in responses] == list(LOOKALIKES + EXCLUDED)
    samples = metrics.scrape()
    # every look-alike is measured; the route is the catch-all template, the count is one each
    assert request_counts(samples) == {("GET", "/{path}", "200"): len(LOOKALIKES)}


def test_wsgi_default_exclusions_match_on_segment_boundaries(metrics, flask_instrumentor) -> None:
    client = echo_flask().test_client()
    for path in LOOKALIKES + EXCLUDED:
        assert client.get(path).get_data(as_text=True) == path
    samples = metrics.scrape()
    assert request_counts(samples) == {("GET", "/<path:path>", "200"): len(LOOKALIKES)}


def test_explicit_exclusions_with_or_without_trailing_slash(metrics) -> None:
    for excluded in (("/internal",), ("/internal/",)):
        app = CovetASGIMiddleware(echo_starlette(), excluded_paths=excluded)
        asgi_drive(app, ("GET", "/internal"), ("GET", "/internal/a/b"), ("GET", "/internals"))
    samples = metrics.scrape()
    # only /internals counts, once per middleware
    assert request_counts(samples) == {("GET", "/{path}", "200"): 2}


# -- point 2: a WSGI body nobody closes ------------------------------------------------------------


def test_flask_test_client_requests_are_counted_without_close(metrics, flask_instrumentor) -> None:
    client = echo_flask().test_client()
    for i in range(100):
        response = client.get(f"/items/{i}")
        assert response.status_code == 200  # the body is never read, the response never closed
    del response
    gc.collect()
    samples = metrics.scrape()
    assert request_counts(samples) == {("GET", "/<path:path>", "200"): 100}
    assert samples.value("covet_http_requests_in_flight", method="GET") == 0
    assert (
        samples.value(
            "covet_http_request_duration_seconds_count", method="GET", route="/<path:path>", status_code="200"
        )
        == 100
    )


def test_wsgi_body_read_to_the_end_is_recorded_before_close(metrics) -> None:
    """A server that exhausts the body but has not called close() yet: the request counts once,
    and close() later does not count it again."""

    def app(environ, start_response):
        start_response("200 OK", [("content-type", "text/plain")])
        return iter([b"ab", b"cde"])

    measured = CovetWSGIMiddleware(app, route_for=lambda environ: "/r")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/r", "wsgi.input": None}
    body = measured(environ, lambda status, headers, exc_info=None: None)
    assert b"".join(body) == b"abcde"
    samples = metrics.scrape()
    assert request_counts(samples) == {("GET", "/r", "200"): 1}
    assert samples.value("covet_http_requests_in_flight", method="GET") == 0
    assert (
        samples.value("covet_http_response_body_size_bytes_sum", method="GET", route="/r", status_code="200")
        == 5
    )
    body.close()
    body.close()
    assert request_counts(metrics.scrape()) == {("GET", "/r", "200"): 1}


def test_wsgi_body_never_iterated_nor_closed_is_recorded_when_dropped(metrics) -> None:
    def app(environ, start_response):
        start_response("204 No Content", [])
        return [b""]

    measured = CovetWSGIMiddleware(app, route_for=lambda environ: "/gone")
    body = measured({"REQUEST_METHOD": "DELETE", "PATH_INFO": "/gone"}, lambda *a: None)
    assert metrics.scrape().value("covet_http_requests_in_flight", method="DELETE") == 1
    del body
    gc.collect()
    samples = metrics.scrape()
    assert request_counts(samples) == {("DELETE", "/gone", "204"): 1}
    assert samples.value("covet_http_requests_in_flight", method="DELETE") == 0


# -- point 3: malformed Content-Length -------------------------------------------------------------

MALFORMED = ("abc", "1_0", "-5", "+5", "١٠", "10, 10", "")


@pytest.mark.parametrize("value", MALFORMED)
def test_asgi_malformed_content_length_counts_the_request(metrics, starlette_instrumentor, value) -> None:
    options = {"content": b"x" * 10, "headers": {"content-length": value.encode()}}
    [response] = asgi_drive(echo_starlette(), ("POST", "/upload", options))
    assert response.status_code == 200
    samples = metrics.scrape()
    assert request_counts(samples) == {("POST", "/upload", "200"): 1}
    assert samples.value("covet_http_requests_in_flight", method="POST") == 0
    # the size is unknown: no observation rather than a wrong one
    assert samples.get("covet_http_request_body_size_bytes_count", method="POST", route="/upload") == 0


@pytest.mark.parametrize("value", [v for v in MALFORMED if v])
def test_wsgi_malformed_content_length_counts_the_request(metrics, flask_instrumentor, value) -> None:
    client = echo_flask().test_client()
    response = client.post("/upload", data=b"", environ_overrides={"CONTENT_LENGTH": value})
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "0"
    samples = metrics.scrape()
    assert request_counts(samples) == {("POST", "/upload", "200"): 1}
    assert samples.get("covet_http_request_body_size_bytes_count", method="POST", route="/upload") == 0


def test_valid_content_length_is_still_recorded(metrics, starlette_instrumentor) -> None:
    asgi_drive(echo_starlette(), ("POST", "/upload", {"content": b"x" * 321}))
    samples = metrics.scrape()
    assert samples.value("covet_http_request_body_size_bytes_sum", method="POST", route="/upload") == 321


# -- point 7: status codes outside 100-599 ---------------------------------------------------------


def test_invented_status_codes_fold_into_other(metrics, starlette_instrumentor) -> None:
    codes = [*range(600, 1500), 99, 0]
    asgi_drive(
        echo_starlette(),
        *(("GET", f"/status/{c}") for c in codes),
        ("GET", "/status/418"),
        ("GET", "/status/599"),
        ("GET", "/status/100"),
    )
    samples = metrics.scrape()
    # 0 is "no response started": servers answer 500, and so does the metric
    assert request_counts(samples) == {
        ("GET", "/status/{code}", "other"): len(codes) - 1,
        ("GET", "/status/{code}", "500"): 1,
        ("GET", "/status/{code}", "418"): 1,
        ("GET", "/status/{code}", "599"): 1,
        ("GET", "/status/{code}", "100"): 1,
    }
    statuses = {
        s["status_code"]
        for s in samples.series("covet_http_request_duration_seconds_count")
        if s["route"] == "/status/{code}"
    }
    assert statuses == {"other", "500", "418", "599", "100"}
