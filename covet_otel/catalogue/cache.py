"""Cache group: redis-py command metrics measured in the app process.

covet_cache_hit_ratio is a recording rule (rules.py) and covet_cache_memory_usage_bytes comes from
the collector's Redis receiver (collector.py); docs/cache.md says why neither is computed here.
"""

from ._model import OTHER, SECONDS_BUCKETS, Label, MetricDef

COMMAND = Label(
    "command",
    description="upper-case Redis command name (first word of multi-word commands such as CONFIG "
    "GET) from a fixed set of known commands, PIPELINE or MULTI for a whole pipeline or "
    "transaction, else other; never a key or an argument",
)
OUTCOME = Label(
    "outcome",
    ("success", "error", "cancelled"),
    description="error: the call raised (counted in covet_cache_errors_total too); cancelled: the "
    "application cancelled the awaiting task (its own asyncio.wait_for deadline, a request "
    "aborted) before Redis answered, not an error of Redis",
)
ERROR_TYPE = Label(
    "error_type",
    ("connection", "timeout", "response", OTHER),
    description="connection: Redis unreachable or the connection broke (redis-py ConnectionError "
    "and subclasses, OSError); timeout: no answer in time (redis-py TimeoutError); response: "
    "Redis answered with an error (ResponseError: wrong type, unknown command, script error...); "
    "other: anything else, e.g. WatchError when a watched key changed",
)

# The hit rule, as data: the instrumentation reads these tuples, the notes below quote them.
HIT_ONE_UNLESS_NIL = ("GET", "GETEX", "GETDEL", "HGET", "LINDEX", "ZSCORE")
HIT_ONE_IF_NONEMPTY = ("HGETALL", "HKEYS", "HVALS", "SMEMBERS", "HEXISTS")
HIT_PER_ELEMENT = ("MGET", "HMGET", "HGETDEL", "HGETEX", "ZMSCORE")
HIT_PER_KEY_COUNT = ("EXISTS",)

HIT_RULE = (
    "Counted from the reply redis-py already parsed, never from keys or values. "
    f"One per call: {', '.join(HIT_ONE_UNLESS_NIL)} (nil is a miss; an empty string is a stored "
    f"value, a hit); {', '.join(HIT_ONE_IF_NONEMPTY)} (an empty reply or 0 is a miss: Redis "
    f"deletes empty collections). One per key, field or member asked: {', '.join(HIT_PER_ELEMENT)} "
    "(each nil is a miss). EXISTS: one per key given (a reply of n is n hits and keys-n misses). "
    "Commands inside pipelines and transactions count too, under their own command name. A "
    "command that raised counts neither; other commands never count."
)

# the catalogue's compact layout: one block per entry
# fmt: off
METRICS = (
    MetricDef(
        "covet_cache_operation_duration_seconds", "histogram", "s", "cache", "sdk",
        "Duration of Redis commands and pipelines, by command and outcome.",
        (COMMAND, OUTCOME), buckets=SECONDS_BUCKETS,
        notes="A pipeline or transaction is one operation (command PIPELINE or MULTI), timed from "
        "execute() to its replies; its commands are counted in covet_cache_pipeline_commands_total. "
        "The time includes redis-py's own retries.",
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
        notes="One per failed call after redis-py's own retries; a failed pipeline counts once, "
        "under PIPELINE or MULTI.",
    ),
    MetricDef(
        "covet_cache_pipeline_commands_total", "counter", "{command}", "cache", "sdk",
        "Commands sent inside pipelines and transactions.",
        (COMMAND,),
        notes="Counted when execute() sends them, whether or not the pipeline then succeeds.",
    ),
)
# fmt: on
