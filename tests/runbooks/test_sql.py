"""Every SQL block of the runbooks runs in psql on a real PostgreSQL: read-only blocks in a read-only
session (proving they change nothing), blocks marked ``-- Changes state:`` on a throwaway server.

The server is given something to look at first: a table with rows, a session idle in a transaction
holding a row lock, and a second session blocked behind it, so the lock and activity queries join
real rows."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator

import psycopg
import pytest
from harness import PostgreSQL

from .markdown import Block, blocks, runbook_files

SQL: list[Block] = [b for path in runbook_files() for b in blocks(path) if b.lang == "sql"]
READ_ONLY = [b for b in SQL if not b.changes_state]
CHANGING = [b for b in SQL if b.changes_state]
# Statements that change the server even inside a read-only transaction: a block using them must
# say so on its first line.
SIDE_EFFECTS = re.compile(r"pg_terminate_backend|pg_cancel_backend|pg_drop_replication_slot|\\gexec", re.I)


class Scene:
    """A lock holder (idle in transaction) and a session blocked behind it, on ``server``."""

    def __init__(self, server: PostgreSQL) -> None:
        self.server = server
        server.psql(
            "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, total numeric, created timestamptz);"
            "INSERT INTO orders SELECT g, g * 1.5, now() FROM generate_series(1, 1000) g"
            " ON CONFLICT DO NOTHING;"
            "ANALYZE orders;"
        )
        self.holder = psycopg.connect(server.dsn, application_name="runbook-holder")
        self.holder.execute("UPDATE orders SET total = total + 1 WHERE id = 1")  # opens a transaction
        self.waiter = psycopg.connect(server.dsn, application_name="runbook-waiter", autocommit=True)
        blocked_update = "UPDATE orders SET total = total + 2 WHERE id = 1"
        self._blocked = threading.Thread(target=lambda: self.waiter.execute(blocked_update), daemon=True)
        self._blocked.start()
        waiting = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'runbook-waiter' AND wait_event_type = 'Lock'"
        )
        for _ in range(100):
            if server.psql(waiting) == "1":
                break
            threading.Event().wait(0.05)
        else:
            raise AssertionError("the waiter never blocked")

    def close(self) -> None:
        try:
            self.holder.rollback()
        except psycopg.Error:
            pass  # a changing block may have terminated it: that is what it is for
        self._blocked.join(timeout=10)
        for conn in (self.holder, self.waiter):
            conn.close()


def psql(server: PostgreSQL, sql: str, read_only: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
    if read_only:
        env["PGOPTIONS"] = "-c default_transaction_read_only=on"
    return subprocess.run(
        [str(server.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", server.host,
         "-p", str(server.port), "-U", server.user, "-d", server.database, "-f", "-"],
        input=sql,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def scene(postgres: PostgreSQL) -> Iterator[Scene]:
    s = Scene(postgres)
    yield s
    s.close()


def test_there_are_sql_blocks() -> None:
    assert len(READ_ONLY) >= 40
    assert len(CHANGING) >= 10


@pytest.mark.parametrize("block", SQL, ids=[b.where for b in SQL])
def test_side_effects_are_declared(block: Block) -> None:
    if SIDE_EFFECTS.search(block.text):
        assert block.changes_state, f"{block.where}: changes state; start it with '-- Changes state:'"


@pytest.mark.parametrize("block", READ_ONLY, ids=[b.where for b in READ_ONLY])
def test_read_only_block_runs_in_a_read_only_session(scene: Scene, block: Block) -> None:
    result = psql(scene.server, block.text, read_only=True)
    assert result.returncode == 0, f"{block.where}:\n{block.text}\n{result.stderr}"
    assert "ERROR" not in result.stderr, result.stderr


def test_the_lock_queries_see_the_blocked_session(scene: Scene) -> None:
    """The blocking-tree query of the pool runbook names the holder and the waiter (the scene works,
    so an empty result elsewhere would be the query's fault)."""
    pool_runbook = "database-connection-pool-exhausted.md"
    query = next(b for b in READ_ONLY if "pg_blocking_pids" in b.text and b.path.name == pool_runbook)
    result = psql(scene.server, query.text, read_only=True)
    holder = scene.holder.info.backend_pid
    waiter = scene.waiter.info.backend_pid
    assert re.search(rf"\b{waiter}\b.*\b{holder}\b", result.stdout), result.stdout


def test_a_changing_block_is_refused_read_only(scene: Scene) -> None:
    """The read-only session really refuses writes, so a block passing above changes nothing."""
    result = psql(scene.server, "ALTER ROLE CURRENT_USER SET statement_timeout = '30s';", read_only=True)
    assert result.returncode != 0
    assert "read-only transaction" in result.stderr


@pytest.fixture(scope="module")
def throwaway() -> Iterator[Scene]:
    server = PostgreSQL()
    try:
        server.start()
        s = Scene(server)
        yield s
        s.close()
    finally:
        server.cleanup()


@pytest.mark.parametrize("block", CHANGING, ids=[b.where for b in CHANGING])
def test_changing_block_runs_on_a_throwaway_server(throwaway: Scene, block: Block) -> None:
    result = psql(throwaway.server, block.text, read_only=False)
    assert result.returncode == 0, f"{block.where}:\n{block.text}\n{result.stderr}"
    assert "ERROR" not in result.stderr, result.stderr
