"""Metrics computed by Prometheus recording rules (alerts/ holds the rules themselves)."""

from ._model import Label, MetricDef

METRICS = (
    MetricDef(
        "covet_cache_hit_ratio",
        "gauge",
        "1",
        "cache",
        "rule",
        "Share of read keys found over the last 5 minutes, per job: "
        "rate(hits) / (rate(hits) + rate(misses)).",
        (Label("job"),),
        notes="A recording rule, not an in-process ratio: a lifetime ratio in each process can "
        "neither be aggregated across workers nor show a recent drop.",
    ),
    MetricDef(
        "covet_postgresql_cache_hit_ratio",
        "gauge",
        "1",
        "database",
        "rule",
        "Share of block reads served from shared buffers over the last 5 minutes, per database "
        "server and database: rate(blocks_hit) / (rate(blocks_hit) + rate(blocks_read)).",
        (Label("job"), Label("instance"), Label("database")),
        notes="A recording rule over covet_postgresql_blocks_hit_total and _blocks_read_total.",
    ),
)
