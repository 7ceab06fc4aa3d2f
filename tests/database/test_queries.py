"""Query metrics on a real PostgreSQL, read from the scraped /metrics text."""

from __future__ import annotations

import asyncio
import io

import asyncpg
import pytest
from db_helpers import on_connection

QUERY_COUNT = "covet_db_query_duration_seconds_count"
QUERY_SUM = "covet_db_query_duration_seconds_sum"
ERRORS = "covet_db_query_errors_total"
SLOW = "covet_db_slow_queries_total"


def count(samples, pool: str, operation: str, outcome: str = "success") -> float:
    return samples.get(QUERY_COUNT, pool=pool, operation=operation, outcome=outcome)


def test_n_queries_give_count_n_per_operation(covet_asyncpg, database, metrics) -> None:
    name, dsn = database

    async def body(conn: asyncpg.Connection) -> None:
        await conn.execute("CREATE TABLE items (id int, label text)")
        for i in range(5):
            await conn.execute("INSERT INTO items VALUES ($1, $2)", i, "x")
        await conn.executemany("INSERT INTO items VALUES ($1, $2)", [(i, "y") for i in range(10)])
        for _ in range(7):
            assert await conn.fetchval("SELECT count(*) FROM items") == 15
        rows = await conn.fetch("SELECT id FROM items WHERE label = $1", "y")
        assert len(rows) == 10
        row = await conn.fetchrow("SELECT id, label FROM items WHERE id = $1", 3)
        assert row["label"] == "x"
        assert await conn.execute("UPDATE items SET label = 'z' WHERE id < 2") == "UPDATE 4"
        assert await conn.execute("DELETE FROM items WHERE label = 'z'") == "DELETE 4"
        async with conn.transaction():
            await conn.execute("INSERT INTO items VALUES (99, 'tx')")

    on_connection(dsn, body)
    s = metrics.scrape()
    assert count(s, name, "CREATE") == 1
    # 5 single INSERTs, one executemany (one statement however many rows), one inside the transaction
    assert count(s, name, "INSERT") == 7
    assert count(s, name, "SELECT") == 9
    assert count(s, name, "UPDATE") == 1
    assert count(s, name, "DELETE") == 1
    assert count(s, name, "BEGIN") == 1
    assert count(s, name, "COMMIT") == 1
    assert s.total(QUERY_COUNT, pool=name) == 21
    assert s.total(QUERY_COUNT, outcome="error") == 0
    assert s.value(QUERY_SUM, pool=name, operation="SELECT", outcome="success") > 0
    assert s.types["covet_db_query_duration_seconds"] == "histogram"
    # the label sets are exactly the catalogue's, and no SQL text appears anywhere
    assert {tuple(sorted(lbl)) for lbl in s.series(QUERY_COUNT)} == {("operation", "outcome", "pool")}
    # (only covet_db_* lines: an HTTP test earlier in this process may have left route="/items/{id}")
    assert [line for line in s.text.splitlines() if line.startswith("covet_db_") and "items" in line] == []


def test_syntax_error_counts_outcome_error_and_sqlstate_class_42(covet_asyncpg, database, metrics) -> None:
    name, dsn = database
    raised: list[BaseException] = []

    async def body(conn: asyncpg.Connection) -> None:
        with pytest.raises(asyncpg.PostgresSyntaxError) as info:
            await conn.fetch("SELECT 1 FROM")
        raised.append(info.value)
        with pytest.raises(asyncpg.UndefinedTableError):
            await conn.execute("DELETE FROM no_such_table")
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("CREATE TABLE u (a int PRIMARY KEY); INSERT INTO u VALUES (1), (1)")

    on_connection(dsn, body)
    assert raised[0].sqlstate == "42601"
    s = metrics.scrape()
    assert count(s, name, "SELECT", "error") == 1
    assert count(s, name, "SELECT", "success") == 0
    assert s.value(ERRORS, pool=name, operation="SELECT", sqlstate_class="42") == 1
    assert s.value(ERRORS, pool=name, operation="DELETE", sqlstate_class="42") == 1
    # a multi-statement execute is labelled by its first verb
    assert s.value(ERRORS, pool=name, operation="CREATE", sqlstate_class="23") == 1
    assert s.total(ERRORS, pool=name) == 3


def test_pg_sleep_crosses_the_slow_threshold(covet_asyncpg, database, metrics) -> None:
    name, dsn = database  # the fixture sets COVET_DB_SLOW_QUERY_SECONDS=0.2

    async def body(conn: asyncpg.Connection) -> None:
        await conn.execute("SELECT pg_sleep(0.3)")
        await conn.fetchval("SELECT pg_sleep(0.01)")
        await conn.execute("SET statement_timeout = 250")
        with pytest.raises(asyncpg.QueryCanceledError):
            await conn.execute("SELECT pg_sleep(1)")

    on_connection(dsn, body)
    s = metrics.scrape()
    # the slow success and the slow failure (statement_timeout, SQLSTATE 57014) count, the fast one not
    assert s.value(SLOW, pool=name, operation="SELECT") == 2
    assert s.value(ERRORS, pool=name, operation="SELECT", sqlstate_class="57") == 1
    assert count(s, name, "SELECT") == 2
    assert s.value("covet_db_query_duration_seconds_bucket", pool=name, operation="SELECT",
                   outcome="success", le="0.25") == 1  # fmt: skip


def test_a_cursor_over_1000_rows_counts_one_query(covet_asyncpg, database, metrics) -> None:
    name, dsn = database

    async def body(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            rows = [r async for r in conn.cursor("SELECT generate_series(1, 1000) AS n", prefetch=50)]
            assert len(rows) == 1000
            cursor = await conn.cursor("SELECT generate_series(1, 1000)")
            fetched = 0
            while batch := await cursor.fetch(100):
                fetched += len(batch)
            assert fetched == 1000
            stmt = await conn.prepare("SELECT generate_series(1, $1::int)")
            assert len([r async for r in stmt.cursor(1000)]) == 1000

    on_connection(dsn, body)
    s = metrics.scrape()
    assert count(s, name, "SELECT") == 3
    assert count(s, name, "BEGIN") == 1
    assert count(s, name, "COMMIT") == 1
    assert s.total(QUERY_COUNT, pool=name) == 5


def test_prepared_statements_count_each_execution(covet_asyncpg, database, metrics) -> None:
    name, dsn = database

    async def body(conn: asyncpg.Connection) -> None:
        await conn.execute("CREATE TABLE p (a int)")
        insert = await conn.prepare("INSERT INTO p VALUES ($1)")
        await insert.executemany([(i,) for i in range(4)])
        await insert.fetch(10)
        select = await conn.prepare("SELECT a FROM p WHERE a >= $1 ORDER BY a")
        assert await select.fetchval(0) == 0
        assert (await select.fetchrow(3))["a"] == 3
        assert len(await select.fetch(0)) == 5
        plan = await select.explain(0)
        assert isinstance(plan, list)

    on_connection(dsn, body)
    s = metrics.scrape()
    assert count(s, name, "INSERT") == 2
    assert count(s, name, "SELECT") == 3
    # explain() runs one EXPLAIN statement on the connection
    assert count(s, name, "EXPLAIN") == 1
    assert s.total(QUERY_COUNT, pool=name) == 7


def test_copy_counts_one_statement_each(covet_asyncpg, database, metrics) -> None:
    name, dsn = database

    async def body(conn: asyncpg.Connection) -> None:
        await conn.execute("CREATE TABLE c (a int, b text)")
        await conn.copy_records_to_table("c", records=[(i, str(i)) for i in range(100)])
        await conn.copy_to_table("c", source=io.BytesIO(b"500\tx\n501\ty\n"))
        out = io.BytesIO()
        await conn.copy_from_table("c", output=out)
        assert out.getvalue().count(b"\n") == 102
        out = io.BytesIO()
        # with arguments asyncpg runs helper statements itself: they are not the app's
        await conn.copy_from_query("SELECT a FROM c WHERE a > $1", 499, output=out)
        assert out.getvalue() == b"500\n501\n"

    on_connection(dsn, body)
    s = metrics.scrape()
    assert count(s, name, "COPY") == 4
    assert count(s, name, "CREATE") == 1
    assert s.total(QUERY_COUNT, pool=name) == 5


def test_pool_and_direct_connections_count_alike_and_pool_resets_are_not_counted(
    covet_asyncpg, database, metrics
) -> None:
    name, dsn = database

    async def main() -> None:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            for _ in range(6):
                assert await pool.fetchval("SELECT 1") == 1
            async with pool.acquire() as conn:
                await conn.execute("SELECT 2")
                async with conn.transaction():
                    await conn.fetch("SELECT 3")
            conn = await pool.acquire()
            await conn.fetchrow("SELECT 4")
            await pool.release(conn)
        finally:
            await pool.close()

    asyncio.run(main())
    s = metrics.scrape()
    # each release runs asyncpg's reset query (SELECT pg_advisory_unlock_all(); ... RESET ALL): not counted
    assert count(s, name, "SELECT") == 9
    assert count(s, name, "BEGIN") == 1
    assert count(s, name, "COMMIT") == 1
    assert s.total(QUERY_COUNT, pool=name) == 11
