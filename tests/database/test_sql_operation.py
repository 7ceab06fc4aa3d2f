"""The `operation` label: the SQL verb, never the SQL text, bounded to the catalogue's values."""

from __future__ import annotations

import pytest

from covet_otel.catalogue.database import OPERATION
from covet_otel.instrumentation import asyncpg_sql
from covet_otel.instrumentation.asyncpg_sql import classify, operation


@pytest.mark.parametrize(
    ("query", "verb"),
    [
        ("SELECT 1", "SELECT"),
        ("  select * from t", "SELECT"),
        ("\n\tInsert into t values ($1)", "INSERT"),
        ("-- a comment\nUPDATE t SET a = 1", "UPDATE"),
        ("/* outer /* nested */ still comment */ DELETE FROM t", "DELETE"),
        ("((SELECT 1) UNION (SELECT 2))", "SELECT"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
        ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", "BEGIN"),
        ("BEGIN", "BEGIN"),
        ("END", "COMMIT"),
        ("abort", "ROLLBACK"),
        ("ROLLBACK TO SAVEPOINT s1", "ROLLBACK"),
        ("COPY t FROM STDIN", "COPY"),
        ("TABLE t", "SELECT"),
        ("VALUES (1), (2)", "SELECT"),
        ("CREATE TABLE t (a int); INSERT INTO t VALUES (1)", "CREATE"),
        ("SELEC 1", "other"),
        ("frobnicate the database", "other"),
        ("", "other"),
        ("   -- only a comment", "other"),
        ("/* unterminated", "other"),
        ("selectx 1", "other"),
    ],
)
def test_verb(query: str, verb: str) -> None:
    assert classify(query) == verb
    assert operation(query) == verb


def test_non_strings_are_other() -> None:
    assert operation(None) == "other"
    assert operation(b"SELECT 1") == "other"
    assert operation(42) == "other"


def test_every_result_is_an_allowed_label_value() -> None:
    for verb in OPERATION.values or ():
        if verb != "other":
            assert classify(f"{verb.lower()} something") == verb


def test_cache_stays_bounded_and_skips_long_queries() -> None:
    asyncpg_sql._cache.clear()
    for i in range(asyncpg_sql._CACHE_MAX + 10):
        assert operation(f"SELECT {i}") == "SELECT"
    assert len(asyncpg_sql._cache) <= asyncpg_sql._CACHE_MAX
    long_query = "INSERT INTO t VALUES " + ",".join(["(1)"] * 5000)
    assert operation(long_query) == "INSERT"
    assert long_query not in asyncpg_sql._cache
