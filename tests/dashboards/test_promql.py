"""Every query of every dashboard, with Grafana's variables substituted as Grafana does, parses with
a real PromQL parser (promql-parser) and names only catalogue metrics, shipped recording rules, or
Prometheus's and the collector's own series, with labels those carry."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from covet_otel.catalogue import BY_NAME
from covet_otel.catalogue.external import EXTERNAL_SERIES
from covet_otel.mixin.dashboards.lint import panels, variables
from covet_otel.mixin.dashboards.promql import metric_labels, selectors, substitute

from .conftest import REPO

# As Grafana would fill them for a 1 h range at 15 s scrape interval: two values selected in every
# multi-value variable (one with regex metacharacters, which Grafana escapes).
GRAFANA_VALUES: dict[str, Any] = {
    "__rate_interval": "1m0s",
    "__interval": "15s",
    "__range": "1h",
    "__range_s": "3600",
    "__interval_ms": "15000",
    "datasource": "covet-prometheus",
}
SAMPLE_VALUES = ["shop", "api.v2 (eu)"]


def _queries(model: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for panel in panels(model):
        for target in panel.get("targets", []):
            out.append((f"panel {panel['id']} {panel['title']!r}", target["expr"]))
    for a in model.get("annotations", {}).get("list", []):
        out.append((f"annotation {a['name']!r}", a["expr"]))
    return out


def _grafana_values(model: dict[str, Any]) -> dict[str, Any]:
    values = dict(GRAFANA_VALUES)
    for name in variables(model):
        values.setdefault(name, SAMPLE_VALUES)
    return values


def test_multi_value_substitution_is_grafanas() -> None:
    expr = 'rate(x{job=~"$job", instance=~"${instance}", pool=~"[[pool]]"}[$__rate_interval])'
    out = substitute(
        expr, {"job": ["a", "b.c"], "instance": ["10.0.0.1:80"], "pool": "$__all", "__rate_interval": "1m0s"}
    )
    assert out == r'rate(x{job=~"(a|b\\.c)", instance=~"10\\.0\\.0\\.1:80", pool=~"$__all"}[1m0s])'
    with pytest.raises(KeyError, match=r"\$route"):
        substitute('x{route=~"$route"}', {})


def test_every_query_parses_and_names_catalogue_metrics(committed: dict[str, Any]) -> None:
    problems: list[str] = []
    used: set[str] = set()
    count = 0
    for uid, model in committed.items():
        values = _grafana_values(model)
        for where, expr in _queries(model):
            count += 1
            try:
                found = selectors(substitute(expr, values))
            except (KeyError, ValueError) as exc:
                problems.append(f"{uid} {where}: {exc}")
                continue
            assert found, f"{uid} {where}: no series selector in {expr}"
            for s in found:
                used.add(s.metric)
                try:
                    labels = metric_labels(s.metric)
                except KeyError as exc:
                    problems.append(f"{uid} {where}: {exc}")
                    continue
                for name, _op, _value in s.matchers:
                    if labels is not None and name not in labels:
                        problems.append(f"{uid} {where}: {s.metric} has no label {name}")
    assert problems == []
    assert count > 100  # every panel of 14 dashboards, not a handful
    # the catalogue is the contract: almost every name used is a covet_* catalogue metric
    outside = {m for m in used if m not in BY_NAME and m.rsplit("_", 1)[0] not in BY_NAME}
    assert outside <= set(EXTERNAL_SERIES), outside


def test_recording_rules_used_are_shipped(committed: dict[str, Any]) -> None:
    """A rule metric a panel reads is recorded by a shipped rule file (else the panel stays empty)."""
    shipped: set[str] = set()
    for path in sorted((REPO / "alerts").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            shipped |= {r["record"] for r in group["rules"] if "record" in r}
    used = {
        s.metric
        for model in committed.values()
        for _, expr in _queries(model)
        for s in selectors(substitute(expr, _grafana_values(model)))
        if s.metric in BY_NAME and BY_NAME[s.metric].source == "rule"
    }
    assert used, "the dashboards read the hit-ratio and SLO rules"
    assert used <= shipped, used - shipped


def test_variable_queries_parse(committed: dict[str, Any]) -> None:
    for uid, model in committed.items():
        for v in variables(model).values():
            if v["type"] != "query":
                continue
            q = v["query"]["query"]
            assert q.startswith("label_values(") and q.endswith(")"), q
            inner, label = q[len("label_values(") : -1].rsplit(",", 1)
            for s in selectors(substitute(inner, _grafana_values(model))):
                labels = metric_labels(s.metric)
                assert labels is None or label.strip() in labels, f"{uid} variable {v['name']}: {q}"
