"""Health-area helpers: run a coroutine, talk to an ASGI app in-process, count database round trips."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine, Iterator
from typing import Any

import httpx
import psutil


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe")


def checks_of(response: httpx.Response) -> dict[str, dict[str, Any]]:
    """{check name: its (single) entry} from a health+json response."""
    assert response.headers["content-type"] == "application/health+json"
    return {name: entries[0] for name, entries in json.loads(response.content)["checks"].items()}


class CountingConnection:
    def __init__(self, conn: Any, owner: CountingPool) -> None:
        self.conn = conn
        self.owner = owner

    async def fetchval(self, query: str, *args: Any) -> Any:
        self.owner.round_trips += 1
        return await self.conn.fetchval(query, *args)

    def terminate(self) -> None:
        self.conn.terminate()


class CountingPool:
    """An asyncpg pool that counts the queries sent through it (for the single-flight tests)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.round_trips = 0

    async def acquire(self) -> CountingConnection:
        return CountingConnection(await self.pool.acquire(), self)

    async def release(self, conn: CountingConnection) -> None:
        await self.pool.release(conn.conn)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


@contextlib.contextmanager
def frozen(server: Any) -> Iterator[None]:
    """SIGSTOP a server with every process it forked, SIGCONT them after.

    `harness` pause() stops the server's process group, but PostgreSQL backends call setsid() and
    live in groups of their own: an open connection would keep answering.
    """
    root = psutil.Process(server.pid)
    processes = [root, *root.children(recursive=True)]
    for process in processes:
        process.suspend()
    try:
        yield
    finally:
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()
