"""The catalogue: the CovetPy names, the generated reference, the CLI output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from covet_otel.catalogue import BY_NAME, CATALOGUE, Label, MetricDef, render
from covet_otel.catalogue._model import validate

REPO = Path(__file__).resolve().parents[2]

# DESIGN.md: names the CovetPy pack used, kept verbatim (or renamed where promtool rejects them)
SEED_NAMES = [
    "covet_db_connections_active", "covet_db_query_duration_seconds", "covet_db_connections_leaked_total",
    "covet_db_pool_health_status", "covet_system_cpu_usage_percent", "covet_system_memory_usage_bytes",
    "covet_disk_usage_bytes", "covet_http_requests_total", "covet_http_request_duration_seconds",
    "covet_app_auth_failures_total", "covet_cache_hits_total", "covet_cache_hit_ratio",
    "covet_cache_memory_usage_bytes", "covet_health_check_status", "covet_backup_last_success_timestamp",
    "covet_backup_size_bytes", "covet_migration_pending_total", "covet_migration_duration_seconds",
]  # fmt: skip


def test_every_seed_name_is_kept_or_recorded() -> None:
    seed_recorded = {d.seed_name: d.name for d in CATALOGUE if d.seed_name}
    for name in SEED_NAMES:
        assert name in BY_NAME or name in seed_recorded, name
    assert seed_recorded["covet_migration_pending_total"] == "covet_migration_pending"


def test_group_sizes_cover_the_covetpy_pack() -> None:
    sizes = Counter(d.group for d in CATALOGUE)
    pack = {"database": 10, "system": 8, "http": 6, "cache": 5, "health": 3, "backup_migration": 6}
    for group, minimum in pack.items():
        assert sizes[group] >= minimum, (group, sizes[group])
    assert len(CATALOGUE) >= 38


def test_otel_names_translate_back_to_prometheus_names() -> None:
    from opentelemetry.exporter.prometheus._mapping import map_unit, sanitize_full_name

    for d in CATALOGUE:
        name = sanitize_full_name(d.otel_name)
        unit = map_unit(d.unit)
        if unit and not name.endswith("_" + unit):
            name += "_" + unit
        if d.kind == "counter":
            name += "_total"
        assert name == d.name, (d.otel_name, d.unit, name)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (MetricDef("covet_x", "counter", "", "system", "sdk", "x"), "counters end in _total"),
        (MetricDef("covet_x_total", "gauge", "", "system", "sdk", "x"), "only counters"),
        (MetricDef("covet_x", "gauge", "By", "system", "sdk", "x"), "_bytes suffix"),
        (MetricDef("covet_x", "gauge", "", "nope", "sdk", "x"), "unknown group"),
        (MetricDef("covet_x", "gauge", "1", "system", "sdk", "x"), "unit 1"),
        (MetricDef("other_x", "gauge", "", "system", "sdk", "x"), "not a covet_"),
    ],
)
def test_inconsistent_entries_are_rejected(bad: MetricDef, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate((bad,))


def test_sdk_histograms_need_buckets() -> None:
    with pytest.raises(ValueError, match="bucket"):
        MetricDef("covet_x_seconds", "histogram", "s", "system", "sdk", "x", (Label("a"),))


def test_docs_metrics_md_is_current() -> None:
    committed = (REPO / "docs" / "metrics.md").read_text()
    assert committed == render.as_markdown(), (
        "docs/metrics.md is stale: run `covet-otel catalog --format markdown > docs/metrics.md`"
    )


def test_cli_json_lists_every_metric() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "covet_otel.cli", "catalog", "--format", "json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    entries = json.loads(out)
    assert [e["name"] for e in entries] == [d.name for d in CATALOGUE]
    first = entries[0]
    assert {"name", "type", "unit", "group", "source", "labels"} <= first.keys()
    assert first["name"] == "covet_db_query_duration_seconds"
    assert first["type"] == "histogram" and first["unit"] == "s" and first["source"] == "sdk"
    assert [label["name"] for label in first["labels"]] == ["pool", "operation", "outcome"]


def test_cli_filters_by_group() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "covet_otel.cli", "catalog", "--group", "cache", "--format", "json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert {e["group"] for e in json.loads(out)} == {"cache"}


def test_docs_settings_md_is_current() -> None:
    from covet_otel.settings import as_markdown

    assert (REPO / "docs" / "settings.md").read_text() == as_markdown(), (
        "docs/settings.md is stale: run `covet-otel settings --format markdown > docs/settings.md`"
    )


def test_every_external_series_is_read_by_a_shipped_consumer() -> None:
    """catalogue/external.py lists only what the shipped rules, dashboards or runbooks query."""
    from covet_otel.catalogue.external import EXTERNAL_SERIES

    shipped = [
        *(REPO / "alerts").rglob("*.yml"),
        *(REPO / "grafana").rglob("*.json"),
        *(REPO / "runbooks").glob("*.md"),
    ]
    text = "\n".join(p.read_text() for p in shipped)
    unread = [name for name in EXTERNAL_SERIES if not re.search(rf"\b{name}\b", text)]
    assert unread == []
