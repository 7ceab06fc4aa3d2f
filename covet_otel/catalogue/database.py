"""Database group: asyncpg query, pool and leak metrics measured in the app process."""

from ._model import OTHER, SECONDS_BUCKETS, Label, MetricDef

POOL = Label("pool", description="the pool's explicit name, else its database name; never user or host")
OPERATION = Label(
    "operation",
    (
        "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "BEGIN", "COMMIT", "ROLLBACK",
        "SAVEPOINT", "RELEASE", "COPY", "CREATE", "ALTER", "DROP", "TRUNCATE", "GRANT", "REVOKE",
        "SET", "SHOW", "LISTEN", "NOTIFY", "UNLISTEN", "EXPLAIN", "ANALYZE", "VACUUM", "LOCK",
        "CALL", "DO", "PREPARE", "EXECUTE", "DEALLOCATE", "DISCARD", "RESET", "FETCH", "DECLARE",
        "CLOSE", "REFRESH", OTHER,
    ),
    "the SQL verb of the statement; never SQL text",
)
OUTCOME = Label("outcome", ("success", "error"))
# SQLSTATE classes (first two characters) from the PostgreSQL manual, appendix A.
SQLSTATE_CLASS = Label(
    "sqlstate_class",
    (
        "08", "0A", "21", "22", "23", "25", "28", "2B", "2D", "34", "3B", "3D", "3F", "40", "42",
        "53", "54", "55", "57", "58", "P0", "XX", "none", OTHER,
    ),
    "SQLSTATE class; `none` for client-side errors without a SQLSTATE (connection lost, timeout)",
)

METRICS = (
    MetricDef(
        "covet_db_query_duration_seconds", "histogram", "s", "database", "sdk",
        "Duration of database statements, by SQL verb and outcome.",
        (POOL, OPERATION, OUTCOME), buckets=SECONDS_BUCKETS,
        notes="A cursor or a `copy_*` call counts as one statement; `executemany` counts once.",
    ),
    MetricDef(
        "covet_db_query_errors_total", "counter", "{error}", "database", "sdk",
        "Statements that raised, by SQLSTATE class.",
        (POOL, OPERATION, SQLSTATE_CLASS),
    ),
    MetricDef(
        "covet_db_slow_queries_total", "counter", "{query}", "database", "sdk",
        "Statements slower than COVET_DB_SLOW_QUERY_SECONDS.",
        (POOL, OPERATION),
    ),
    MetricDef(
        "covet_db_connections_active", "gauge", "{connection}", "database", "sdk",
        "Pool connections currently acquired by the application.",
        (POOL,),
    ),
    MetricDef(
        "covet_db_connections_idle", "gauge", "{connection}", "database", "sdk",
        "Open pool connections not acquired by anyone.",
        (POOL,),
    ),
    MetricDef(
        "covet_db_pool_size", "gauge", "{connection}", "database", "sdk",
        "Open connections in the pool (active + idle).",
        (POOL,),
    ),
    MetricDef(
        "covet_db_pool_min_size", "gauge", "{connection}", "database", "sdk",
        "Configured minimum pool size.",
        (POOL,),
    ),
    MetricDef(
        "covet_db_pool_max_size", "gauge", "{connection}", "database", "sdk",
        "Configured maximum pool size.",
        (POOL,),
    ),
    MetricDef(
        "covet_db_pool_acquire_duration_seconds", "histogram", "s", "database", "sdk",
        "Time spent waiting for a pool connection, by outcome.",
        (POOL, Label("outcome", ("success", "timeout", "error"))), buckets=SECONDS_BUCKETS,
    ),
    MetricDef(
        "covet_db_pool_acquire_timeouts_total", "counter", "{acquire}", "database", "sdk",
        "Acquires that timed out: the pool was exhausted for the whole timeout.",
        (POOL,),
    ),
    MetricDef(
        "covet_db_connections_leaked_total", "counter", "{connection}", "database", "sdk",
        "Connections held longer than COVET_DB_LEAK_SECONDS, or dropped without release.",
        (POOL, Label("reason", ("held_too_long", "not_released"))),
    ),
)
