"""Cache group: redis-py command metrics measured in the app process."""

from ._model import OTHER, SECONDS_BUCKETS, Label, MetricDef

COMMAND = Label(
    "command",
    description="upper-case Redis command name from a fixed known set, PIPELINE or MULTI for a "
    "pipeline or transaction, else other; never a key",
)
OUTCOME = Label("outcome", ("success", "error"))
ERROR_TYPE = Label("error_type", ("connection", "timeout", "response", OTHER))

HIT_RULE = (
    "A hit is a key found by a read command: GET/GETEX/GETDEL/HGET/HGETALL/LINDEX/ZSCORE/SMEMBERS "
    "and friends count one per call (nil or empty is a miss); MGET and HMGET count one per key; "
    "EXISTS counts one per key it was given (found: hit, else miss)."
)

METRICS = (
    MetricDef(
        "covet_cache_operation_duration_seconds", "histogram", "s", "cache", "sdk",
        "Duration of Redis commands and pipelines, by command and outcome.",
        (COMMAND, OUTCOME), buckets=SECONDS_BUCKETS,
    ),
    MetricDef(
        "covet_cache_hits_total", "counter", "{hit}", "cache", "sdk",
        "Keys found by read commands.", (COMMAND,), notes=HIT_RULE,
    ),
    MetricDef(
        "covet_cache_misses_total", "counter", "{miss}", "cache", "sdk",
        "Keys not found by read commands.", (COMMAND,), notes=HIT_RULE,
    ),
    MetricDef(
        "covet_cache_errors_total", "counter", "{error}", "cache", "sdk",
        "Commands that raised, by error type: connection failures and timeouts are distinct.",
        (COMMAND, ERROR_TYPE),
    ),
    MetricDef(
        "covet_cache_pipeline_commands_total", "counter", "{command}", "cache", "sdk",
        "Commands sent inside pipelines and transactions.",
        (COMMAND,),
    ),
)
