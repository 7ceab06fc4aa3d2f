"""An asyncpg app with no covet-otel code in it, run under `opentelemetry-instrument` by
test_launcher.py. It exercises every database signal once, then stays up holding a leaked
connection so that the test can scrape /metrics. DATABASE_URL names the database."""

import asyncio
import os

import asyncpg


async def main() -> None:
    dsn = os.environ["DATABASE_URL"]
    conn = await asyncpg.connect(dsn)
    for _ in range(3):
        await conn.fetchval("SELECT 1")
    await conn.execute("CREATE TABLE IF NOT EXISTS t (a int)")
    await conn.executemany("INSERT INTO t VALUES ($1)", [(1,), (2,)])
    try:
        await conn.fetch("SELECT 1 FROM")
    except asyncpg.PostgresSyntaxError:
        pass
    await conn.execute("SELECT pg_sleep(0.15)")  # COVET_DB_SLOW_QUERY_SECONDS=0.1

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    leaked = await pool.acquire()
    try:
        await pool.acquire(timeout=0.1)
    except asyncio.TimeoutError:
        pass
    await leaked.fetchval("SELECT 2")
    print("app ready", flush=True)
    await asyncio.sleep(3600)  # holds `leaked` past COVET_DB_LEAK_SECONDS=0.3


asyncio.run(main())
