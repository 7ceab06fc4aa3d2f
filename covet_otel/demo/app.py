"""The demo service: a small Starlette shop that uses PostgreSQL and Redis like a real one."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route


class Backends:
    """Whatever the demo could reach; a missing backend makes its routes answer 503."""

    def __init__(self, database_url: str | None, redis_url: str | None) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.pool: Any = None
        self.redis: Any = None
        self.error: str | None = None  # why open() failed, for the demo's one-line message

    async def open(self) -> None:
        if self.database_url:
            import asyncpg

            self.pool = await asyncpg.create_pool(self.database_url, min_size=1, max_size=5)
            async with self.pool.acquire() as conn:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS demo_items (id int PRIMARY KEY, name text, stock int)"
                )
                await conn.execute(
                    "INSERT INTO demo_items SELECT g, 'item ' || g, 100 FROM generate_series(1, 100) g "
                    "ON CONFLICT DO NOTHING"
                )
        if self.redis_url:
            import redis.asyncio as aioredis

            self.redis = aioredis.from_url(self.redis_url)

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        client, self.redis = self.redis, None
        if pool is not None:
            # bounded: a pool with a connection stuck in a query must not hold up the exit
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (asyncio.TimeoutError, Exception):
                pool.terminate()
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()


def build_app(backends: Backends) -> Starlette:
    async def index(request: Request) -> PlainTextResponse:
        return PlainTextResponse("covet-otel demo\n")

    async def item(request: Request) -> JSONResponse:
        item_id = int(request.path_params["item_id"])
        if backends.pool is None or backends.redis is None:
            return JSONResponse({"error": "backend not configured"}, status_code=503)
        cached = await backends.redis.get(f"item:{item_id}")
        if cached is not None:
            await backends.redis.incr("stats:cache_served")
            return JSONResponse({"id": item_id, "cached": True})
        async with backends.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT id, name, stock FROM demo_items WHERE id = $1", item_id)
            await conn.fetchval("SELECT count(*) FROM demo_items")
            await conn.execute("UPDATE demo_items SET stock = stock WHERE id = $1", item_id)
        if row is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        await backends.redis.set(f"item:{item_id}", row["name"], ex=5)
        return JSONResponse({"id": row["id"], "name": row["name"], "cached": False})

    async def login(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != "Bearer demo":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"ok": True})

    async def admin(request: Request) -> JSONResponse:
        return JSONResponse({"error": "forbidden"}, status_code=403)

    async def boom(request: Request) -> JSONResponse:
        raise RuntimeError("demo failure")

    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(5):
                yield f"chunk {i}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    routes: list[Any] = [
        Route("/", index),
        Route("/items/{item_id:int}", item),
        Route("/login", login, methods=["POST"]),
        Route("/admin", admin),
        Route("/error", boom),
        Route("/stream", stream),
    ]
    health = _health_app(backends)
    if health is not None:
        # the bare /health answers itself: a Mount alone redirects it (307) to /health/
        routes += [Route("/health", health), Mount("/health", app=health)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await backends.open()
        except Exception as exc:
            backends.error = f"{type(exc).__name__}: {exc}"
            await backends.close()
            raise
        try:
            yield
        finally:
            await backends.close()

    return Starlette(routes=routes, lifespan=lifespan)


def _health_app(backends: Backends) -> Any:
    """The health module's ASGI app with checks for the demo's backends, once that module exists."""
    try:
        from covet_otel import health
    except ImportError:
        return None
    builder = getattr(health, "demo_health_app", None)
    return builder(backends) if builder is not None else None


def random_path() -> tuple[str, str, dict[str, str] | None]:
    """One request of the demo's traffic mix: (method, path, headers)."""
    roll = random.random()
    if roll < 0.70:
        return "GET", f"/items/{random.randint(1, 120)}", None
    if roll < 0.80:
        return "POST", "/login", {"authorization": "Bearer demo" if random.random() < 0.5 else "Bearer x"}
    if roll < 0.85:
        return "GET", "/admin", None
    if roll < 0.88:
        return "GET", "/error", None
    if roll < 0.93:
        return "GET", "/stream", None
    # (readiness probes are sent on a clock, not drawn: see demo._drive)
    return "GET", f"/no/such/page/{random.randint(1, 10_000)}", None
