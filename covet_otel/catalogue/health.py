"""Health group: results of the health module's checks."""

from ._model import SECONDS_BUCKETS, Label, MetricDef

STATUS_VALUES = "1 = pass, 0.5 = warn, 0 = fail."
CHECK = Label("check", description="the check's registered name (component:measurement)")

METRICS = (
    MetricDef(
        "covet_health_check_status",
        "gauge",
        "",
        "health",
        "sdk",
        "Latest result of each health check. " + STATUS_VALUES,
        (CHECK,),
        notes=STATUS_VALUES,
    ),
    MetricDef(
        "covet_health_check_duration_seconds",
        "histogram",
        "s",
        "health",
        "sdk",
        "Duration of health check runs.",
        (CHECK,),
        buckets=SECONDS_BUCKETS,
    ),
    MetricDef(
        "covet_db_pool_health_status",
        "gauge",
        "",
        "health",
        "sdk",
        "Health of each database pool (exhausted or leaking is warn/fail). " + STATUS_VALUES,
        (Label("pool"),),
        notes=STATUS_VALUES,
    ),
)
