"""Renders the catalogue for people (docs/metrics.md, `covet-otel catalog`) and programs (JSON)."""

from __future__ import annotations

import json
from typing import Any

from . import CATALOGUE, GROUPS
from ._model import MetricDef

_GROUP_TITLES = {
    "database": "Database",
    "system": "System",
    "http": "HTTP / application",
    "cache": "Cache",
    "health": "Health",
    "backup_migration": "Backup / migration",
    "security": "Security",
    "business": "Business",
}
_SOURCE_TEXT = {
    "sdk": "app process (covet_otel)",
    "collector": "OpenTelemetry Collector receiver",
    "rule": "Prometheus recording rule",
}


def as_dicts(defs: tuple[MetricDef, ...] = CATALOGUE) -> list[dict[str, Any]]:
    return [
        {
            "name": d.name,
            "type": d.prometheus_type,
            "instrument": d.kind,
            "otel_name": d.otel_name,
            "unit": d.unit,
            "group": d.group,
            "source": d.source,
            "description": d.description,
            "labels": [
                {"name": label.name, "values": list(label.values) if label.values else None}
                for label in d.labels
            ],
            "buckets": list(d.buckets) if d.buckets else None,
            "seed_name": d.seed_name,
            "notes": d.notes or None,
        }
        for d in defs
    ]


def as_json(defs: tuple[MetricDef, ...] = CATALOGUE) -> str:
    return json.dumps(as_dicts(defs), indent=2) + "\n"


def as_table(defs: tuple[MetricDef, ...] = CATALOGUE) -> str:
    rows = [("NAME", "TYPE", "UNIT", "GROUP", "SOURCE", "LABELS")]
    rows += [
        (d.name, d.prometheus_type, d.unit or "-", d.group, d.source, ",".join(d.label_names) or "-")
        for d in defs
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows) + "\n"


def _label_cell(d: MetricDef) -> str:
    parts = []
    for label in d.labels:
        if label.values and len(label.values) <= 12:
            parts.append(f"`{label.name}` ({', '.join(label.values)})")
        elif label.values:
            parts.append(f"`{label.name}` ({len(label.values)} fixed values, see JSON)")
        else:
            parts.append(f"`{label.name}`")
    return "<br>".join(parts) or "—"


def as_markdown(defs: tuple[MetricDef, ...] = CATALOGUE) -> str:
    out = [
        "# Metrics reference",
        "",
        "<!-- Generated from covet_otel/catalogue by `covet-otel catalog --format markdown`;"
        " do not edit by hand. -->",
        "",
        f"{len(defs)} metrics. Sources: `sdk` — measured in the application process by covet_otel "
        "and served at its `/metrics` endpoint or pushed over OTLP; `collector` — produced by the "
        "collector's receivers from the servers themselves; `rule` — computed by a Prometheus "
        "recording rule. `covet-otel catalog --format json` gives the same data for programs.",
        "",
    ]
    for group in GROUPS:
        members = [d for d in defs if d.group == group]
        if not members:
            continue
        out += [f"## {_GROUP_TITLES[group]}", ""]
        out += ["| Metric | Type | Unit | Source | Labels | Description |", "|---|---|---|---|---|---|"]
        for d in members:
            desc = d.description
            if d.seed_name:
                desc += f" (CovetPy pack name: `{d.seed_name}`)"
            out.append(
                f"| `{d.name}` | {d.prometheus_type} | {d.unit or '—'} | {d.source} | "
                f"{_label_cell(d)} | {desc} |"
            )
        notes = [d for d in members if d.notes]
        if notes:
            out.append("")
            out += [f"- `{d.name}`: {d.notes}" for d in notes]
        out.append("")
    out += [
        "## Histogram buckets",
        "",
        "| Metric | Bucket upper bounds |",
        "|---|---|",
    ]
    out += [f"| `{d.name}` | {', '.join(f'{b:g}' for b in d.buckets)} |" for d in defs if d.buckets]
    out.append("")
    return "\n".join(out)
