"""The demo shop: the instrumented application of the compose stack (docker-compose.yml, service
`app`, built by demo/Dockerfile) and of the native test stack (tests/harness/stack.py). A small Starlette
shop run under ``opentelemetry-instrument``, so covet_otel loads exactly as in a user's service, with a
traffic driver inside the same process that calls it over real HTTP.

    opentelemetry-instrument python demo/shop.py --port 8000 --database-url DSN --redis-url URL

Every metric group of the catalogue gets data: HTTP (templated routes, 2xx/4xx/5xx, bodies, streaming,
exceptions), asyncpg (SELECT/INSERT/UPDATE in transactions, a failing statement, slow statements, the
pool), Redis (hits, misses, a WRONGTYPE error, a pipeline), health checks (``/health/*``), security
(auth failures, permission denials, rate limiting, invalid tokens), business events and pending
migrations. Backup and migration runs are separate processes (``covet-otel job``).

Faults are switched through ``/_stack/*`` (not measured: it is in ``COVET_HTTP_EXCLUDED_PATHS``):

    POST /_stack/traffic?rps=20&errors=0.03   traffic rate and share of 5xx requests (rps=0 stops it);
                                               &slow=0.5: share of requests taking 0.8 s
    POST /_stack/leak?reason=not_released      leak one pool connection (or held_too_long&seconds=N:
                                               hold it N seconds, past COVET_DB_LEAK_SECONDS)
    POST /_stack/exhaust?seconds=10            hold every free pool connection for that long
    POST /_stack/health?fail=1                 the critical ``stack:switch`` check fails (fail=0: passes)
    POST /_stack/pending?count=3               covet_migration_pending{migrator="generic"}
    GET  /_stack/ready                         200 once the pool and the Redis client are open
    GET  /_stack/stats                         what the driver sent, by status

Only the standard library, covet_otel and the demo extras are imported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from covet_otel import events, health
from covet_otel.instrumentation.asyncpg import name_pool

log = logging.getLogger("shop")

POOL_NAME = "shop"
POOL_MAX = 5
ITEMS = 100  # ids above this answer 404
MIGRATOR = "generic"
ORDER = events.declare_business_event("order_placed", currency="EUR")
SIGNUP = events.declare_business_event("user_signed_up")


class State:
    """What the routes share, and the fault switches."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.pool: Any = None
        self.redis: Any = None
        self.ready = False
        self.health_fail = False
        self.rps = 20.0
        self.error_share = 0.03
        self.slow_share = 0.0
        self.sent: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def open(self) -> None:
        # PostgreSQL may still be starting (the stack starts everything at once): retry for a while
        deadline = time.monotonic() + 60
        while True:
            try:
                pool = asyncpg.create_pool(self.database_url, min_size=2, max_size=POOL_MAX, timeout=5)
                self.pool = await name_pool(pool, POOL_NAME)
                break
            except (OSError, asyncpg.PostgresError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        async with self.pool.acquire() as conn:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS stack_items (id int PRIMARY KEY, name text, stock int);"
                "CREATE TABLE IF NOT EXISTS stack_orders (id bigserial PRIMARY KEY, item int, amount numeric)"
            )
            await conn.execute(
                "INSERT INTO stack_items SELECT g, 'item ' || g, 1000000 FROM generate_series(1, $1) g "
                "ON CONFLICT DO NOTHING",
                ITEMS,
            )
        self.redis = aioredis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        events.set_pending_migrations(0, MIGRATOR)
        self.ready = True

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.pool is not None:
            self.pool.terminate()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()


def build_app(state: State) -> Starlette:
    async def index(request: Request) -> Response:
        return PlainTextResponse("covet-otel stack app\n")

    async def item(request: Request) -> Response:
        item_id = int(request.path_params["item_id"])
        try:
            cached = await state.redis.get(f"item:{item_id}")
        except Exception:
            cached = None  # the cache is an optimisation: go to the database
        if cached is not None:
            return JSONResponse({"id": item_id, "cached": True})
        try:
            async with state.pool.acquire(timeout=1) as conn:
                row = await conn.fetchrow("SELECT id, name, stock FROM stack_items WHERE id = $1", item_id)
        except Exception:  # pool exhausted, server down or frozen: what a real service answers
            return JSONResponse({"error": "database unavailable"}, status_code=503)
        if row is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        with contextlib.suppress(Exception):
            await state.redis.set(f"item:{item_id}", row["name"], ex=3)
        return JSONResponse({"id": row["id"], "name": row["name"], "cached": False})

    async def order(request: Request) -> Response:
        body = await request.json()
        amount = float(body.get("amount", 10))
        try:
            async with state.pool.acquire(timeout=1) as conn, conn.transaction():
                await conn.execute(
                    "UPDATE stack_items SET stock = stock - 1 WHERE id = $1", int(body.get("item", 1))
                )
                await conn.execute(
                    "INSERT INTO stack_orders (item, amount) VALUES ($1, $2)",
                    int(body.get("item", 1)),
                    amount,
                )
        except Exception:  # pool exhausted, server down or frozen: what a real service answers
            return JSONResponse({"error": "database unavailable"}, status_code=503)
        ORDER.record()
        ORDER.add_value(amount)
        return JSONResponse({"ok": True}, status_code=201)

    async def signup(request: Request) -> Response:
        SIGNUP.record()
        return JSONResponse({"ok": True}, status_code=201)

    async def login(request: Request) -> Response:
        if request.headers.get("authorization") == "Bearer good":
            return JSONResponse({"ok": True})
        events.record_auth_failure(random.choice(("bad_password", "unknown_user")))
        return JSONResponse({"error": "unauthorized"}, status_code=401)

    async def token(request: Request) -> Response:
        events.record_invalid_token("jwt", random.choice(("expired", "bad_signature")))
        return JSONResponse({"error": "invalid token"}, status_code=401)

    async def admin(request: Request) -> Response:
        events.record_permission_denied("missing_role")
        return JSONResponse({"error": "forbidden"}, status_code=403)

    async def limited(request: Request) -> Response:
        events.record_rate_limited("ip")
        return JSONResponse({"error": "slow down"}, status_code=429)

    async def boom(request: Request) -> Response:
        raise RuntimeError("stack app: deliberate failure")

    async def report(request: Request) -> Response:
        # a statement that fails (SQLSTATE class 42) and one slower than COVET_DB_SLOW_QUERY_SECONDS
        try:
            async with state.pool.acquire(timeout=1) as conn:
                await conn.fetchval("SELECT pg_sleep(0.3)")
                with contextlib.suppress(asyncpg.PostgresError):
                    await conn.fetchval("SELECT * FROM no_such_table")
        except Exception:  # pool exhausted, server down or frozen: what a real service answers
            return JSONResponse({"error": "database unavailable"}, status_code=503)
        return JSONResponse({"ok": True})

    async def cart(request: Request) -> Response:
        # a pipeline, and a command that fails on the server (WRONGTYPE)
        try:
            pipe = state.redis.pipeline()
            pipe.incr("stats:carts")
            pipe.expire("stats:carts", 60)
            pipe.set("stack:string", "x")
            await pipe.execute()
            with contextlib.suppress(aioredis.ResponseError):
                await state.redis.lpush("stack:string", "y")
        except Exception:  # Redis down or frozen
            return JSONResponse({"error": "cache unavailable"}, status_code=503)
        return JSONResponse({"ok": True})

    async def slow(request: Request) -> Response:
        # slower than the latency SLO's threshold (0.5 s): the fault of the latency burn-rate alerts
        await asyncio.sleep(0.8)
        return JSONResponse({"ok": True})

    async def upload(request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"received": len(body)})

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(5):
                yield f"chunk {i}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    # -- control ---------------------------------------------------------------------------------
    async def ready(request: Request) -> Response:
        if state.ready:
            return PlainTextResponse("ready\n")
        return PlainTextResponse("starting\n", status_code=503)

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                "sent": dict(state.sent),
                "rps": state.rps,
                "errors": state.error_share,
                "slow": state.slow_share,
            }
        )

    async def traffic(request: Request) -> Response:
        params = request.query_params
        if "rps" in params:
            state.rps = max(0.0, float(params["rps"]))
        if "errors" in params:
            state.error_share = min(1.0, max(0.0, float(params["errors"])))
        if "slow" in params:
            state.slow_share = min(1.0, max(0.0, float(params["slow"])))
        return await stats(request)

    async def leak(request: Request) -> Response:
        reason = request.query_params.get("reason", "not_released")
        if reason not in ("not_released", "held_too_long"):
            return JSONResponse({"error": f"unknown reason {reason!r}"}, status_code=400)
        conn = await state.pool.acquire(timeout=5)
        if reason == "held_too_long":
            seconds = float(request.query_params.get("seconds", "3600"))

            async def hold(held: Any) -> None:
                await asyncio.sleep(seconds)
                await state.pool.release(held)

            state.spawn(hold(conn))
        # not_released: the only reference is dropped here; asyncpg keeps the connection checked out
        # for ever, as after a `conn = await pool.acquire()` whose release was skipped
        del conn
        return JSONResponse({"leaked": reason})

    async def exhaust(request: Request) -> Response:
        seconds = float(request.query_params.get("seconds", "10"))
        held = []
        # every connection the pool can still hand out (leaked ones are gone already)
        with contextlib.suppress(asyncio.TimeoutError):
            while len(held) < state.pool.get_max_size():
                held.append(await state.pool.acquire(timeout=0.5))

        async def release() -> None:
            await asyncio.sleep(seconds)
            for conn in held:
                await state.pool.release(conn)

        state.spawn(release())
        return JSONResponse({"held": len(held), "seconds": seconds})

    async def health_switch(request: Request) -> Response:
        state.health_fail = request.query_params.get("fail", "1") not in ("0", "false", "")
        return JSONResponse({"fail": state.health_fail})

    async def pending(request: Request) -> Response:
        count = int(request.query_params.get("count", "0"))
        events.set_pending_migrations(count, MIGRATOR)
        return JSONResponse({"pending": count})

    registry = health.HealthRegistry()
    registry.add(health.database_check(lambda: state.pool))
    registry.add(health.pool_check(lambda: state.pool, pool_label=POOL_NAME))
    registry.add(health.redis_check(lambda: state.redis))
    registry.add(health.disk_check("/"))
    registry.add(health.memory_check())
    registry.add(health.error_rate_check())

    def switch() -> Any:
        if state.health_fail:
            return health.CheckResult(health.FAIL, output="failed on demand (/_stack/health)")
        return health.CheckResult(health.PASS)

    registry.register("stack:switch", switch, critical=True)

    routes: list[Any] = [
        Route("/", index),
        Route("/items/{item_id:int}", item),
        Route("/orders", order, methods=["POST"]),
        Route("/signup", signup, methods=["POST"]),
        Route("/login", login, methods=["POST"]),
        Route("/token", token),
        Route("/admin", admin),
        Route("/limited", limited),
        Route("/error", boom),
        Route("/report", report),
        Route("/slow", slow),
        Route("/cart", cart, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream", stream),
        Route("/_stack/ready", ready),
        Route("/_stack/stats", stats),
        Route("/_stack/traffic", traffic, methods=["POST"]),
        Route("/_stack/leak", leak, methods=["POST"]),
        Route("/_stack/exhaust", exhaust, methods=["POST"]),
        Route("/_stack/health", health_switch, methods=["POST"]),
        Route("/_stack/pending", pending, methods=["POST"]),
        Mount("/health", app=health.health_asgi_app(registry)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.open()
        try:
            yield
        finally:
            await state.close()

    return Starlette(routes=routes, lifespan=lifespan)


def next_request(state: State) -> tuple[str, str, dict[str, Any]]:
    """One request of the traffic mix: (method, path, httpx keyword arguments)."""
    if random.random() < state.error_share:
        return "GET", "/error", {}
    if random.random() < state.slow_share:
        return "GET", "/slow", {}
    roll = random.random()
    if roll < 0.45:
        return "GET", f"/items/{random.randint(1, ITEMS + 5)}", {}  # some 404s
    if roll < 0.55:
        return "POST", "/orders", {"json": {"item": random.randint(1, ITEMS), "amount": 19.5}}
    if roll < 0.60:
        return "POST", "/cart", {}
    if roll < 0.65:
        headers = {"authorization": random.choice(("Bearer good", "Bearer bad"))}
        return "POST", "/login", {"headers": headers}
    if roll < 0.68:
        return "GET", "/token", {}
    if roll < 0.71:
        return "GET", "/admin", {}
    if roll < 0.74:
        return "GET", "/limited", {}
    if roll < 0.77:
        return "POST", "/signup", {}
    if roll < 0.80:
        return "GET", "/report", {}
    if roll < 0.85:
        return "POST", "/upload", {"content": b"x" * random.randint(10, 5000)}
    if roll < 0.90:
        return "GET", "/stream", {}
    if roll < 0.95:
        return "GET", "/", {}
    return "GET", f"/no/such/page/{random.randint(1, 10_000)}", {}


async def drive(state: State, base: str) -> None:
    """Send the traffic mix at ``state.rps`` and probe the health endpoints once a second (as a
    Kubernetes kubelet would); each request runs as its own task so a hanging backend does not
    stop the others."""
    async with httpx.AsyncClient(base_url=base, timeout=10, follow_redirects=True) as client:

        async def one(method: str, path: str, kwargs: dict[str, Any]) -> None:
            try:
                response = await client.request(method, path, **kwargs)
                state.sent[str(response.status_code)] += 1
            except httpx.HTTPError:
                state.sent["error"] += 1

        last_probe = 0.0
        while True:
            now = time.monotonic()
            if now - last_probe >= 1.0:
                last_probe = now
                for path in ("/health/live", "/health/ready", "/health"):
                    state.spawn(one("GET", path, {}))
            if state.rps <= 0:
                await asyncio.sleep(0.2)
                continue
            state.spawn(one(*next_request(state)))
            await asyncio.sleep(1.0 / state.rps)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    env = os.environ.get
    # every option also from the environment, so a container needs no command line
    parser.add_argument("--host", default=env("SHOP_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("SHOP_PORT", "8000")))
    parser.add_argument("--database-url", default=env("DATABASE_URL"), help="or DATABASE_URL")
    parser.add_argument("--redis-url", default=env("REDIS_URL"), help="or REDIS_URL")
    parser.add_argument(
        "--rps", type=float, default=float(env("SHOP_RPS", "20")), help="requests per second (0: no traffic)"
    )
    parser.add_argument(
        "--errors", type=float, default=float(env("SHOP_ERRORS", "0.03")), help="share answered 500"
    )
    args = parser.parse_args()
    if not args.database_url or not args.redis_url:
        parser.error("give --database-url and --redis-url (or DATABASE_URL and REDIS_URL)")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    state = State(args.database_url, args.redis_url)
    state.rps, state.error_share = args.rps, args.errors
    app = build_app(state)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=args.host, port=args.port, log_level="critical", lifespan="on", access_log=False
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # raises the start-up error
            return
        await asyncio.sleep(0.05)
    print(f"stack app listening on http://{args.host}:{args.port}", flush=True)
    driver = asyncio.create_task(drive(state, f"http://{args.host}:{args.port}"))
    try:
        await serving
    finally:
        driver.cancel()


if __name__ == "__main__":
    asyncio.run(main())
