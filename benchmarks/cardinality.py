"""Cardinality: the number of series on /metrics after 100k distinct URL paths and 100k distinct SQL
texts (budget: constant, i.e. the same after 10k and after 100k inputs).

One process, set up as the launcher does it (covet_otel.configure(), the Starlette and asyncpg
metrics instrumentors). HTTP: a Starlette app called in-process (ASGI, no server) with distinct
paths: ids under a route template (/items/{item_id}), distinct unmatched paths (404s) and distinct
query strings. SQL: distinct statement texts on a real PostgreSQL (SELECT, UPDATE and INSERT
texts with inlined literals and comments, through `Connection.execute`). After each checkpoint the
embedded /metrics endpoint is scraped and its covet_ series counted, as Prometheus would count them
(one per sample line: histogram buckets, _sum and _count included) and as label sets.

    python benchmarks/cardinality.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
from _util import table  # noqa: E402

import covet_otel  # noqa: E402

SAMPLE = re.compile(r"^(covet_\w+?)(?:_bucket|_sum|_count)?(\{[^}]*\})? ", re.MULTILINE)
LE = re.compile(r',?le="[^"]*"')


def count(url: str, prefix: str) -> tuple[int, int]:
    """(time series, label sets) of the covet_<prefix> metrics on /metrics."""
    text = httpx.get(url, timeout=60).text
    lines = 0
    label_sets = set()
    for name, labels in SAMPLE.findall(text):
        if name.startswith(prefix):
            lines += 1
            label_sets.add((name, LE.sub("", labels or "")))
    return lines, len(label_sets)


def http_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def item(request: Any) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["item_id"])

    return Starlette(routes=[Route("/items/{item_id}", item)])


async def drive_http(app: Any, start: int, stop: int) -> None:
    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    for i in range(start, stop):
        kind = i % 3
        path = (f"/items/{i}", f"/no/such/page/{i}", "/items/7")[kind]
        query = f"session={i}".encode() if kind == 2 else b""
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": query, "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }  # fmt: skip
        await app(scope, receive, send)


def statement(i: int) -> str:
    return (
        f"SELECT {i} AS n, 'user-{i}@example.com' AS email",
        f"/* request {i} */ UPDATE counters SET n = n + 1 WHERE id = {i % 10}",
        f"INSERT INTO events (id, payload) VALUES ({i}, 'payload {i}')",
        f"WITH q{i} AS (SELECT {i}) SELECT * FROM q{i}",
    )[i % 4]


async def drive_sql(conn: Any, start: int, stop: int) -> None:
    for i in range(start, stop):
        await conn.execute(statement(i))


async def run(checkpoints: list[int]) -> list[tuple[str, ...]]:
    import asyncpg
    from harness import PostgreSQL

    from covet_otel.instrumentation.asyncpg import AsyncpgMetricsInstrumentor
    from covet_otel.instrumentation.http.frameworks import StarletteMetricsInstrumentor

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COVET_"))}
    env.update(OTEL_EXPORTER_PROMETHEUS_PORT="0", COVET_SYSTEM_METRICS="false")
    pipeline = covet_otel.configure(environ=env)
    assert pipeline is not None and pipeline.prometheus_address is not None
    url = "http://{}:{}/metrics".format(*pipeline.prometheus_address)
    StarletteMetricsInstrumentor().instrument()
    AsyncpgMetricsInstrumentor().instrument()
    app = http_app()
    server = PostgreSQL().start()
    try:
        conn = await asyncpg.connect(server.dsn)
        await conn.execute(
            "CREATE TABLE counters (id int PRIMARY KEY, n int);"
            "INSERT INTO counters SELECT i, 0 FROM generate_series(0, 9) i;"
            "CREATE TABLE events (id int, payload text)"
        )
        rows = []
        done = 0
        for target in checkpoints:
            started = time.perf_counter()
            await drive_http(app, done, target)
            await drive_sql(conn, done, target)
            elapsed = time.perf_counter() - started
            done = target
            http = count(url, "covet_http_")
            db = count(url, "covet_db_")
            rows.append((f"{target:,}", f"{http[0]} / {http[1]}", f"{db[0]} / {db[1]}", f"{elapsed:.1f} s"))
        await conn.close()
    finally:
        server.cleanup()
        covet_otel.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k inputs of each kind instead of 100k")
    args = parser.parse_args()
    checkpoints = [100, 1_000, 2_000] if args.quick else [100, 1_000, 10_000, 100_000]
    rows = asyncio.run(run(checkpoints))
    header = ("distinct paths and SQL texts so far", "HTTP series (time series / label sets)",
              "database series (time series / label sets)", "time for this step")  # fmt: skip
    constant = rows[-1][1:3] == rows[-2][1:3]
    load1, load5, _ = os.getloadavg()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load1:.2f} / {load5:.2f}\n")
    print(table([header, *rows]))
    print(
        f"\nBudget: series on /metrics after {checkpoints[-1]:,} distinct paths and SQL texts: "
        f"HTTP {rows[-1][1]}, database {rows[-1][2]} against the same as after {checkpoints[-2]:,} -> "
        f"{'met' if constant else 'missed by the growth shown above (the series count still grows)'}"
    )


if __name__ == "__main__":
    main()
