"""Helpers for the database tests (not a test module)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg


def on_connection(dsn: str, body: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
    """Run `body(conn)` on a new connection to `dsn`, in a new event loop; close it after."""

    async def main() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await body(conn)
        finally:
            await conn.close()

    asyncio.run(main())
