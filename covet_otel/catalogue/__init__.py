"""The metric catalogue: every `covet_*` metric, defined once. Everything else reads it."""

from __future__ import annotations

from . import cache, collector, database, events, health, http, jobs, rules, system
from ._model import (
    BYTES_BUCKETS,
    GROUPS,
    JOB_SECONDS_BUCKETS,
    OTHER,
    SECONDS_BUCKETS,
    Label,
    MetricDef,
    validate,
)

CATALOGUE: tuple[MetricDef, ...] = (
    *database.METRICS,
    *system.METRICS,
    *http.METRICS,
    *cache.METRICS,
    *health.METRICS,
    *jobs.METRICS,
    *events.METRICS,
    *collector.METRICS,
    *rules.METRICS,
)
validate(CATALOGUE)

BY_NAME: dict[str, MetricDef] = {d.name: d for d in CATALOGUE}


def get(name: str) -> MetricDef:
    """The entry for a Prometheus name; KeyError names the unknown metric."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name} is not in the covet_otel catalogue") from None


__all__ = [
    "BYTES_BUCKETS",
    "BY_NAME",
    "CATALOGUE",
    "GROUPS",
    "JOB_SECONDS_BUCKETS",
    "OTHER",
    "SECONDS_BUCKETS",
    "Label",
    "MetricDef",
    "get",
]
