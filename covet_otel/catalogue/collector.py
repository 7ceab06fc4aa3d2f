"""Metrics the collector adds from the servers themselves (replacing the postgres, redis and node
exporters of the CovetPy pack). The collector's transform step renames the receivers' OTel names
(`receiver`) to these; labels are what remains after its cardinality guard."""

from ._model import Label, MetricDef

DATABASE = Label("database", description="PostgreSQL database name")
STATE = Label("state", description="memory or filesystem state as the hostmetrics receiver names it")

METRICS = (
    # Redis receiver
    MetricDef(
        "covet_cache_memory_usage_bytes", "gauge", "By", "cache", "collector",
        "Memory Redis has allocated (INFO memory used_memory).",
        notes="receiver: redis.memory.used",
    ),
    MetricDef(
        "covet_cache_memory_max_bytes", "gauge", "By", "cache", "collector",
        "Redis maxmemory setting (0 when unlimited).",
        notes="receiver: redis.maxmemory",
    ),
    MetricDef(
        "covet_redis_clients_connected", "gauge", "{client}", "cache", "collector",
        "Client connections open on Redis.",
        notes="receiver: redis.clients.connected",
    ),
    MetricDef(
        "covet_redis_keys_evicted_total", "counter", "{key}", "cache", "collector",
        "Keys evicted by Redis because of the maxmemory limit.",
        notes="receiver: redis.keys.evicted",
    ),
    MetricDef(
        "covet_redis_connections_rejected_total", "counter", "{connection}", "cache", "collector",
        "Connections Redis rejected because of the maxclients limit.",
        notes="receiver: redis.connections.rejected",
    ),
    # PostgreSQL receiver
    MetricDef(
        "covet_postgresql_backends", "gauge", "{connection}", "database", "collector",
        "Server connections per database.",
        (DATABASE,), notes="receiver: postgresql.backends",
    ),
    MetricDef(
        "covet_postgresql_connections_max", "gauge", "{connection}", "database", "collector",
        "Server max_connections setting.",
        notes="receiver: postgresql.connection.max",
    ),
    MetricDef(
        "covet_postgresql_db_size_bytes", "gauge", "By", "database", "collector",
        "Disk space used by each database.",
        (DATABASE,), notes="receiver: postgresql.db_size",
    ),
    MetricDef(
        "covet_postgresql_commits_total", "counter", "{commit}", "database", "collector",
        "Committed transactions per database.",
        (DATABASE,), notes="receiver: postgresql.commits",
    ),
    MetricDef(
        "covet_postgresql_rollbacks_total", "counter", "{rollback}", "database", "collector",
        "Rolled back transactions per database.",
        (DATABASE,), notes="receiver: postgresql.rollbacks",
    ),
    MetricDef(
        "covet_postgresql_deadlocks_total", "counter", "{deadlock}", "database", "collector",
        "Deadlocks detected per database.",
        (DATABASE,), notes="receiver: postgresql.deadlocks",
    ),
    # Host metrics receiver
    MetricDef(
        "covet_host_cpu_load_average_1m", "gauge", "{thread}", "system", "collector",
        "Host load average over 1 minute.",
        notes="receiver: system.cpu.load_average.1m",
    ),
    MetricDef(
        "covet_host_memory_usage_bytes", "gauge", "By", "system", "collector",
        "Host memory by state.",
        (STATE,), notes="receiver: system.memory.usage",
    ),
    MetricDef(
        "covet_host_filesystem_usage_bytes", "gauge", "By", "system", "collector",
        "Filesystem space by mount point and state.",
        (Label("mountpoint"), STATE), notes="receiver: system.filesystem.usage",
    ),
    MetricDef(
        "covet_host_network_io_bytes_total", "counter", "By", "system", "collector",
        "Bytes sent and received per network device.",
        (Label("device"), Label("direction", ("receive", "transmit"))),
        notes="receiver: system.network.io",
    ),
)
