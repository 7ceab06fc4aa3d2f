"""Health endpoints: CPU per probe, ASGI app called in-process (no server), against a bare app.

Variants (one process, interleaved by round):
  bare ASGI         an ASGI callable that answers a constant JSON body (the floor of any endpoint)
  live              /health/live (never runs a check)
  ready cached      /health/ready from the cached round (the TTL has not expired)
  ready cached+token  the same with `Authorization: Bearer <token>` (detailed body)
  all cached        /health (every check) from the cache
  Starlette mount   /health/ready through Starlette's router (Mount("/health")), vs a Starlette
                    route returning the same JSON
  WSGI ready        the WSGI app's /ready from the cache, called directly
Also: one uncached round of the demo's checks (database, pool, Redis, disk, memory, error rate)
against real PostgreSQL and Redis when the test harness can start them: paid once per TTL.

Measure: whole-process CPU time (time.process_time) per request, median of 5 rounds after a
warm-up. Run: python benchmarks/health.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# a script in this folder named like a stdlib module must not shadow it (http.server is used by
# the standalone health server): keep the folder off the import path and load _util by file
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent / "tests"))  # the harness starts PostgreSQL and Redis
_spec = importlib.util.spec_from_file_location("_bench_util", HERE / "_util.py")
assert _spec is not None and _spec.loader is not None
_util = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_util)
table = _util.table

from covet_otel.health import (  # noqa: E402
    HealthRegistry,
    database_check,
    disk_check,
    error_rate_check,
    health_asgi_app,
    health_wsgi_app,
    memory_check,
    pool_check,
    redis_check,
)

TOKEN = "bench-token"
BUDGETS = {"live": 1000.0, "ready cached": 2000.0}  # µs per request


def scope(path: str, token: bool = False) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"user-agent", b"kube-probe/1.31"), (b"accept", b"*/*")]
    if token:
        headers.append((b"authorization", f"Bearer {TOKEN}".encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def asgi_caller(app: Any, path: str, token: bool = False) -> Callable[[], Coroutine[Any, Any, None]]:
    request = scope(path, token)
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def call() -> None:
        await app(dict(request), _receive, send)
        if statuses.pop() != 200:
            raise AssertionError(f"{path} did not answer 200")

    return call


def wsgi_caller(app: Any, path: str) -> Callable[[], None]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "/health"}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        if not status.startswith("200"):
            raise AssertionError(status)

    def call() -> None:
        b"".join(app(dict(environ), start_response))

    return call


_BARE_BODY = json.dumps({"status": "pass"}).encode()
_BARE_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BARE_BODY)).encode())]


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _BARE_HEADERS})
    await send({"type": "http.response.body", "body": _BARE_BODY})


def cached_registry() -> HealthRegistry:
    """A registry like the demo's, with checks that pass at once: only the cached path is timed."""
    registry = HealthRegistry(cache_seconds=3600, timeout=2)
    for name in ("database:responseTime", "redis:responseTime"):
        registry.register(name, lambda: True, component_type="datastore")
    for name in ("database:connections", "disk:utilization", "memory:utilization", "http:errorRate"):
        registry.register(name, lambda: True, critical=False)
    return registry


def measure(variants: dict[str, Callable[[], Any]], n: int, rounds: int) -> dict[str, float]:
    """µs of process CPU per call: warm-up, then `rounds` rounds with the variants interleaved."""

    async def batch(fn: Callable[[], Any], count: int) -> float:
        start = time.process_time()
        for _ in range(count):
            await fn()
        return time.process_time() - start

    def sync_batch(fn: Callable[[], Any], count: int) -> float:
        start = time.process_time()
        for _ in range(count):
            fn()
        return time.process_time() - start

    samples: dict[str, list[float]] = {name: [] for name in variants}

    async def main() -> None:
        for round_no in range(rounds + 1):
            for name, fn in variants.items():
                count = max(1, n // 10) if round_no == 0 else n
                if asyncio.iscoroutinefunction(fn):
                    spent = await batch(fn, count)
                else:
                    spent = sync_batch(fn, count)
                if round_no:
                    samples[name].append(spent / count * 1e6)

    asyncio.run(main())
    return {name: statistics.median(values) for name, values in samples.items()}


def starlette_apps(registry: HealthRegistry) -> tuple[Any, Any]:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    async def constant(request: Any) -> JSONResponse:
        return JSONResponse({"status": "pass"})

    plain = Starlette(routes=[Route("/health/ready", constant)])
    mounted = Starlette(routes=[Mount("/health", app=health_asgi_app(registry, token=TOKEN))])
    return plain, mounted


def real_round(rounds: int) -> str:
    """CPU and wall time of one uncached round of the demo's checks on real servers."""
    try:
        import asyncpg
        import redis.asyncio as aioredis
        from harness import PostgreSQL, Redis
    except ImportError as exc:
        return f"(uncached round not measured: {exc})"
    pg, rd = PostgreSQL(), Redis()
    try:
        pg.start()
        rd.start()
    except Exception as exc:
        pg.cleanup()
        rd.cleanup()
        return f"(uncached round not measured: {type(exc).__name__})"

    async def main() -> tuple[float, float]:
        pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=5)
        client = aioredis.from_url(rd.url)
        registry = HealthRegistry(cache_seconds=0.000001, timeout=2)
        for check in (
            database_check(pool),
            pool_check(pool),
            redis_check(client),
            disk_check("/"),
            memory_check(),
            error_rate_check(),
        ):
            registry.add(check)
        cpu, wall = [], []
        try:
            for i in range(rounds + 2):
                await asyncio.sleep(0.001)
                c0, w0 = time.process_time(), time.perf_counter()
                await registry.results()
                if i >= 2:
                    cpu.append((time.process_time() - c0) * 1e3)
                    wall.append((time.perf_counter() - w0) * 1e3)
        finally:
            await pool.close()
            await client.aclose()
        return statistics.median(cpu), statistics.median(wall)

    try:
        cpu, wall = asyncio.run(main())
    finally:
        pg.cleanup()
        rd.cleanup()
    return (
        f"One uncached round of the demo's 6 checks (real PostgreSQL and Redis): "
        f"{cpu:.2f} ms CPU, {wall:.2f} ms wall (median of {rounds}); paid once per "
        f"COVET_HEALTH_CACHE_SECONDS, whatever the number of probes."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations (smoke run)")
    args = parser.parse_args()
    n, rounds = (200, 2) if args.quick else (5000, 5)
    os.environ.pop("COVET_HEALTH_TOKEN", None)

    registry = cached_registry()
    asgi = health_asgi_app(registry, token=TOKEN)
    wsgi = health_wsgi_app(registry, token=TOKEN)
    asyncio.run(registry.results())  # fill the cache (each asyncio.run is a new loop: sync path below)
    registry.results_sync()
    plain_starlette, mounted = starlette_apps(registry)

    variants: dict[str, Callable[[], Any]] = {
        "bare ASGI": asgi_caller(bare_app, "/health/ready"),
        "live": asgi_caller(asgi, "/health/live"),
        "ready cached": asgi_caller(asgi, "/health/ready"),
        "ready cached+token": asgi_caller(asgi, "/health/ready", token=True),
        "all cached": asgi_caller(asgi, "/health"),
        "Starlette route (bare)": asgi_caller(plain_starlette, "/health/ready"),
        "Starlette mount ready": asgi_caller(mounted, "/health/ready"),
        "WSGI ready cached": wsgi_caller(wsgi, "/ready"),
    }
    figures = measure(variants, n, rounds)
    bare = figures["bare ASGI"]
    rows = [("variant", "CPU µs/request", "vs bare ASGI")]
    for name, value in figures.items():
        rows.append((name, f"{value:.1f}", f"{value / bare:.2f}x"))
    print(table(rows))
    print()
    print(real_round(3 if args.quick else 11))
    print()
    for name, limit in BUDGETS.items():
        value = figures[name]
        verdict = "met" if value <= limit else f"missed by {value - limit:.0f} µs"
        print(
            f"Budget: health, /health/{name.split()[0]}{' (cached)' if 'cached' in name else ''} "
            f"per request in-process: {value:.1f} µs against {limit:.0f} µs -> {verdict}"
        )


if __name__ == "__main__":
    main()
