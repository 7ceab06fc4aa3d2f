"""A FastAPI-style service that knows nothing of covet-otel: an asyncpg pool and a Redis client
opened in its lifespan. Its health endpoints come from COVET_HEALTH_PORT alone."""

from __future__ import annotations

import contextlib
import os

import asyncpg
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

state: dict = {}


@contextlib.asynccontextmanager
async def lifespan(app):
    state["pool"] = await asyncpg.create_pool(os.environ["SHOP_DATABASE_URL"], min_size=1, max_size=3)
    state["redis"] = aioredis.from_url(os.environ["SHOP_REDIS_URL"])
    yield
    await state["pool"].close()
    await state["redis"].aclose()


async def item(request):
    item_id = request.path_params["item_id"]
    cached = await state["redis"].get(f"item:{item_id}")
    value = await state["pool"].fetchval("SELECT $1::int * 2", item_id)
    await state["redis"].set(f"item:{item_id}", value)
    return JSONResponse({"id": item_id, "value": value, "cached": cached is not None})


app = Starlette(routes=[Route("/items/{item_id:int}", item)], lifespan=lifespan)
