"""HTTP middleware cost: a FastAPI app called in-process (no server), per request.

Variants, each in its own subprocess (instrumentors patch classes process-wide):
  bare      the app as written
  covet     StarletteMetricsInstrumentor (CovetASGIMiddleware inside ServerErrorMiddleware)
  upstream  FastAPIInstrumentor.instrument_app with an SDK TracerProvider (no exporter) and an
            SDK MeterProvider: the upstream span + HTTP metrics instrumentation
  starlette-bare / starlette-covet  the same on a plain Starlette app
  flask-bare / flask-covet  a Flask app's WSGI callable, body iterated and closed as a server does
  covet-configured  covet after covet_otel.configure() (as under opentelemetry-instrument, no
            exporter): a global MeterProvider also switches on FastAPI's own native telemetry

Measure: whole-process CPU time (time.process_time) per request, median of 5 rounds after a
warm-up. Run: python benchmarks/http_requests.py [--quick]
"""

from __future__ import annotations

import os
import sys

# Drop this folder from the import path: a script there named like a standard library module
# (benchmarks/http.py, before it was renamed) would shadow it for asyncio, httpx and starlette.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

VARIANTS = (
    "bare",
    "covet",
    "upstream",
    "starlette-bare",
    "starlette-covet",
    "covet-configured",
    "flask-bare",
    "flask-covet",
)
SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/items/42",
    "raw_path": b"/items/42",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"bench"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


def build_app(variant: str):
    if variant == "covet-configured":
        import covet_otel

        covet_otel.configure(environ={"OTEL_METRICS_EXPORTER": "none", "COVET_SYSTEM_METRICS": "false"})
    if variant.startswith("flask"):
        return build_flask(variant)
    if "covet" in variant:
        from covet_otel.instrumentation.http.frameworks import StarletteMetricsInstrumentor

        StarletteMetricsInstrumentor().instrument(excluded_paths=("/metrics", "/health"))
    if variant.startswith("starlette"):
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        async def item(request):
            return PlainTextResponse(request.path_params["item_id"])

        return Starlette(routes=[Route("/items/{item_id}", item)])
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict:
        return {"item_id": item_id}

    if variant == "upstream":
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=TracerProvider(),
            meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        )
    return app


def build_flask(variant: str):
    if variant == "flask-covet":
        from covet_otel.instrumentation.http.frameworks import FlaskMetricsInstrumentor

        FlaskMetricsInstrumentor().instrument(excluded_paths=("/metrics", "/health"))
    from flask import Flask

    app = Flask(__name__)

    @app.get("/items/<int:item_id>")
    def read_item(item_id: int) -> dict:
        return {"item_id": item_id}

    return app


ENVIRON = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/items/42",
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "SERVER_NAME": "bench",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "bench",
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


def drive_wsgi(app, n: int) -> float:
    import io

    def start_response(status, headers, exc_info=None):
        return None

    start = time.process_time()
    for _ in range(n):
        environ = dict(ENVIRON)
        environ["wsgi.input"] = io.BytesIO(b"")
        body = app(environ, start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return (time.process_time() - start) / n


async def drive(app, n: int) -> float:
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    start = time.process_time()
    for _ in range(n):
        await app(dict(SCOPE), receive, send)
    return (time.process_time() - start) / n


def run_variant(variant: str, n: int, rounds: int) -> dict:
    app = build_app(variant)
    if variant.startswith("flask"):
        drive_wsgi(app, max(n // 5, 200))
        samples = [drive_wsgi(app, n) for _ in range(rounds)]
        return {
            "variant": variant,
            "us": statistics.median(samples) * 1e6,
            "rounds": [s * 1e6 for s in samples],
        }
    loop = asyncio.new_event_loop()
    loop.run_until_complete(drive(app, max(n // 5, 200)))  # warm-up: build stacks, fill caches
    samples = [loop.run_until_complete(drive(app, n)) for _ in range(rounds)]
    loop.close()
    return {"variant": variant, "us": statistics.median(samples) * 1e6, "rounds": [s * 1e6 for s in samples]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer requests per round")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("-n", type=int, default=None)
    args = parser.parse_args()
    n = args.n or (2_000 if args.quick else 20_000)
    if args.variant:
        print(json.dumps(run_variant(args.variant, n, 5)))
        return
    results = {}
    for variant in VARIANTS:
        out = subprocess.run(
            [sys.executable, __file__, "--variant", variant, "-n", str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    bare, covet, upstream = (results[v]["us"] for v in ("bare", "covet", "upstream"))
    print(f"requests per round: {n}, median of 5 rounds, CPU µs per request (process_time)")
    for variant in VARIANTS:
        rounds = ", ".join(f"{r:.1f}" for r in results[variant]["rounds"])
        print(f"  {variant:16s} {results[variant]['us']:8.1f}   rounds: {rounds}")
    print(
        f"FastAPI: covet adds {covet - bare:.1f} µs (x{covet / bare:.2f} of bare); "
        f"upstream adds {upstream - bare:.1f} µs; covet costs {(covet - bare) / (upstream - bare):.1%} "
        "of the upstream addition"
    )
    s_bare, s_covet = results["starlette-bare"]["us"], results["starlette-covet"]["us"]
    print(f"Starlette: covet adds {s_covet - s_bare:.1f} µs (x{s_covet / s_bare:.2f} of bare)")
    f_bare, f_covet = results["flask-bare"]["us"], results["flask-covet"]["us"]
    print(f"Flask (WSGI): covet adds {f_covet - f_bare:.1f} µs (x{f_covet / f_bare:.2f} of bare)")
    configured = results["covet-configured"]["us"]
    print(f"FastAPI after configure(): {configured - bare:.1f} µs over bare (FastAPI native telemetry on)")


if __name__ == "__main__":
    main()
