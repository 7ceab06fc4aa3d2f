"""Metrics computed by Prometheus recording rules (alerts/ holds the rules themselves)."""

from ._model import Label, MetricDef

SLO_WINDOW = Label("window", description="a window of the burn-rate table: 5m, 30m, 1h, 2h, 6h, 1d, 3d")

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
    MetricDef(
        "covet_slo_http_availability_error_ratio",
        "gauge",
        "1",
        "http",
        "rule",
        "Share of HTTP requests answered with a 5xx, per job, over the window in the `window` label "
        "(the windows of the SLO burn-rate alerts).",
        (Label("job"), SLO_WINDOW),
        notes="Burn rate = this ratio / (1 - availability target). Absent for a job without traffic in "
        "the window (never 0/0). Defined in covet_otel/mixin (slo).",
    ),
    MetricDef(
        "covet_slo_http_latency_error_ratio",
        "gauge",
        "1",
        "http",
        "rule",
        "Share of HTTP requests slower than the latency SLO threshold (0.5 s by default), per job, "
        "over the window in the `window` label.",
        (Label("job"), SLO_WINDOW),
        notes="Burn rate = this ratio / (1 - latency target). Read from the histogram bucket at the "
        "threshold, which must be a bucket boundary.",
    ),
    MetricDef(
        "covet_slo_http_availability_budget_remaining_ratio",
        "gauge",
        "1",
        "http",
        "rule",
        "Share of the availability error budget left over the SLO window (30 days by default), per "
        "job: 1 = untouched, 0 = spent, negative = overspent.",
        (Label("job"),),
        notes="1 - (5xx ratio over the SLO window) / (1 - availability target); evaluated every 5 minutes.",
    ),
    MetricDef(
        "covet_slo_http_latency_budget_remaining_ratio",
        "gauge",
        "1",
        "http",
        "rule",
        "Share of the latency error budget left over the SLO window (30 days by default), per job: "
        "1 = untouched, 0 = spent, negative = overspent.",
        (Label("job"),),
        notes="1 - (share of slow requests over the SLO window) / (1 - latency target); evaluated "
        "every 5 minutes.",
    ),
)
