"""The shape of one catalogue entry and the rules that keep entries consistent."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

Kind = Literal["counter", "updowncounter", "histogram", "gauge"]
Source = Literal["sdk", "collector", "rule"]

GROUPS = (
    "database",
    "system",
    "http",
    "cache",
    "health",
    "backup_migration",
    "security",
    "business",
)

# Second-scale boundaries: a 10 ms query must land in a bucket that tells it apart from a
# 100 ms one (the SDK default boundaries are for milliseconds: 0.01 s would fall in "5").
SECONDS_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
# Long-running jobs (backups, migrations) take minutes to hours.
JOB_SECONDS_BUCKETS: tuple[float, ...] = (
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
)
# Request and response bodies: 100 B to 100 MB on a roughly x4 scale.
BYTES_BUCKETS: tuple[float, ...] = (
    100.0,
    1_000.0,
    4_000.0,
    16_000.0,
    64_000.0,
    256_000.0,
    1_000_000.0,
    4_000_000.0,
    16_000_000.0,
    100_000_000.0,
)

# Label values that are not in a label's allowed set are reported as this value.
OTHER = "other"

_UNIT_SUFFIX = {"s": "seconds", "By": "bytes", "%": "percent"}
_PROM_NAME = re.compile(r"^covet_[a-z0-9_]+$")


@dataclass(frozen=True)
class Label:
    """One attribute key; `values` bounds it where the set is known up front."""

    name: str
    values: tuple[str, ...] | None = None
    description: str = ""


@dataclass(frozen=True)
class MetricDef:
    """One `covet_*` metric: the single source of every fact about it."""

    name: str  # the Prometheus name, as a user queries it
    kind: Kind
    unit: str  # UCUM unit of the OTel instrument ("s", "By", "%", or a {annotation})
    group: str
    source: Source
    description: str
    labels: tuple[Label, ...] = ()
    seed_name: str | None = None  # the CovetPy pack's name where it differs
    buckets: tuple[float, ...] | None = None  # histograms only
    notes: str = ""  # definitions a user needs (hit rule, status values, ...)
    otel_name: str = field(default="")  # derived when empty

    def __post_init__(self) -> None:
        if not self.otel_name:
            object.__setattr__(self, "otel_name", derive_otel_name(self.name, self.kind, self.unit))
        if self.kind == "histogram" and self.source == "sdk" and self.buckets is None:
            raise ValueError(f"{self.name}: histograms need explicit bucket boundaries")

    @cached_property  # read for every series at every collection
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    @property
    def worker_merge(self) -> str:
        """How pre-fork workers' values of this metric combine on the parent's /metrics endpoint:
        `sum` (counts, sizes, histograms), `min` (statuses: the worst wins), `max` (timestamps),
        or `parent` (host-wide figures every process reads alike)."""
        if self.kind != "gauge":
            return "sum"
        if self.name.endswith("_status"):
            return "min"
        if self.name.endswith("_timestamp"):
            return "max"
        if self.group == "system" and not self.name.startswith("covet_process_"):
            return "parent"
        return "sum"

    @property
    def prometheus_type(self) -> str:
        return {"counter": "counter", "histogram": "histogram"}.get(self.kind, "gauge")


def derive_otel_name(name: str, kind: str, unit: str) -> str:
    """The OTel instrument name whose Prometheus translation is `name`.

    Translation (both the Python exporter and the collector's) appends the unit suffix and
    `_total` for counters; the OTel name carries neither and uses dots as separators.
    """
    base = name
    if kind == "counter" and base.endswith("_total"):
        base = base[: -len("_total")]
    suffix = _UNIT_SUFFIX.get(unit)
    if suffix and base.endswith("_" + suffix):
        base = base[: -len(suffix) - 1]
    return base.replace("_", ".")


def validate(defs: tuple[MetricDef, ...]) -> None:
    """Fail loudly on an inconsistent catalogue (called at import: a broken entry is a bug)."""
    seen: set[str] = set()
    for d in defs:
        if not _PROM_NAME.match(d.name):
            raise ValueError(f"{d.name}: not a covet_ Prometheus name")
        if d.name in seen:
            raise ValueError(f"{d.name}: defined twice")
        seen.add(d.name)
        if d.group not in GROUPS:
            raise ValueError(f"{d.name}: unknown group {d.group!r}")
        if d.kind == "counter" and not d.name.endswith("_total"):
            raise ValueError(f"{d.name}: counters end in _total")
        if d.kind != "counter" and d.name.endswith("_total"):
            raise ValueError(f"{d.name}: only counters end in _total")
        suffix = _UNIT_SUFFIX.get(d.unit)
        if suffix and not d.name.removesuffix("_total").endswith("_" + suffix):
            raise ValueError(f"{d.name}: unit {d.unit} needs the _{suffix} suffix")
        if d.unit == "1" and not d.name.endswith("_ratio"):
            # the collector appends _ratio to unit-1 gauges, the Python exporter does not
            raise ValueError(f"{d.name}: unit 1 only on names ending in _ratio")
