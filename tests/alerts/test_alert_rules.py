"""The generated rule files: committed copy current, valid for promtool, names from the catalogue,
and the issue's inventory (counts per severity, fixed names, groups, labels, annotations)."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import promql_parser
import pytest
import yaml
from harness import tools

from covet_otel.catalogue import BY_NAME, GROUPS
from covet_otel.catalogue.external import EXTERNAL_SERIES
from covet_otel.mixin import alertmanager
from covet_otel.mixin import alerts as alert_rules
from covet_otel.mixin.config import DASHBOARD_UIDS, RECORDING_RULES, load_config

ALERTS_DIR = tools.REPO_ROOT / "alerts"
PACK_CRITICAL = (
    "DatabaseConnectionPoolExhausted",
    "DatabaseConnectionPoolLeaks",
    "DiskSpaceLow",
    "BackupFailed",
    "ServiceDown",
    "HighMemoryUsage",
    "CacheConnectionErrors",
    "HealthCheckFailing",
)
PACK_NAMED = ("DatabaseHighQueryLatency", "MigrationStuck", "HighHTTPErrorRate", "AuthenticationFailureSpike")
# labels every series of a metric has besides the catalogue's own (Prometheus / the exporter add them)
TARGET_LABELS = {"job", "instance"}


def committed_rule_files() -> list[Path]:
    return sorted(ALERTS_DIR.glob("*.rules.yml"))


def all_rules() -> list[dict]:
    rules = []
    for path in committed_rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += group["rules"]
    return rules


def alerting_rules() -> list[dict]:
    return [r for r in all_rules() if "alert" in r]


def test_committed_output_is_current(tmp_path: Path) -> None:
    """`covet-otel mixin build` with the defaults writes exactly the committed alerts/ files."""
    config = load_config()
    written = alert_rules.write(config, tmp_path)
    assert written, "the build wrote nothing"
    for path in written:
        rel = path.relative_to(tmp_path)
        committed = ALERTS_DIR / rel
        assert committed.exists(), f"alerts/{rel} is not committed: run `covet-otel mixin build`"
        assert committed.read_text() == path.read_text(), (
            f"alerts/{rel} is stale: run `covet-otel mixin build`"
        )
    generated = {p.relative_to(tmp_path) for p in written}
    for path in committed_rule_files():
        assert path.relative_to(ALERTS_DIR) in generated, f"{path} is no longer generated: delete it"
    for rel in alertmanager.GENERATED:
        assert Path(rel) in generated, f"alerts/{rel} is not written by the build"


def test_promtool_check_rules_with_lint() -> None:
    promtool = tools.promtool()
    files = [str(p) for p in committed_rule_files()]
    result = subprocess.run(
        [str(promtool), "check", "rules", "--lint=all", "--lint-fatal", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def _selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def _metric_of(name: str) -> tuple[str, set[str]]:
    """Catalogue entry name and the extra labels its series may carry (histogram suffixes)."""
    if name in BY_NAME:
        return name, set()
    for suffix, extra in (("_bucket", {"le"}), ("_count", set()), ("_sum", set())):
        base = name.removesuffix(suffix)
        if name.endswith(suffix) and base in BY_NAME and BY_NAME[base].kind == "histogram":
            return base, extra
    raise AssertionError(f"{name} is neither in the catalogue nor an external metric")


def test_every_expression_parses_and_uses_catalogue_names_and_labels() -> None:
    """Parsed with promql-parser: every metric name is a catalogue metric (or a histogram's
    _bucket/_count/_sum, or one of the few documented non-covet metrics), and every label a
    selector matches on is one of that metric's labels."""
    rules = all_rules()
    assert rules
    seen: set[str] = set()
    for rule in rules:
        selectors = _selectors(rule["expr"])
        if rule.get("alert") != "Watchdog":
            assert selectors, f"{rule}: no metric read"
        for sel in selectors:
            name = sel.name
            assert name, f"{rule.get('alert') or rule.get('record')}: selector without a metric name"
            seen.add(name)
            if name in EXTERNAL_SERIES:
                external = EXTERNAL_SERIES[name]
                if external is None:
                    continue
                allowed = set(external)
            else:
                base, extra = _metric_of(name)
                allowed = set(BY_NAME[base].label_names) | TARGET_LABELS | extra
            for matcher in sel.matchers.matchers:
                assert matcher.name in allowed, (
                    f"{rule.get('alert') or rule.get('record')}: {name} has no label {matcher.name!r}"
                )
    assert {"up", "otelcol_receiver_refused_metric_points_total"} <= seen


def test_recording_rules_are_catalogue_rule_metrics() -> None:
    records = {r["record"] for r in all_rules() if "record" in r}
    assert records == set(RECORDING_RULES)
    catalogue_rules = {d.name for d in BY_NAME.values() if d.source == "rule"}
    assert records == catalogue_rules, "catalogue source=rule entries and the shipped recording rules differ"
    for rule in all_rules():
        if "record" in rule:
            labels = set(rule.get("labels", {}))
            assert labels <= set(BY_NAME[rule["record"]].label_names), rule


def test_inventory_counts_and_names() -> None:
    rules = alerting_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert len(names) >= 25
    severities = Counter(r["labels"]["severity"] for r in rules)
    assert severities["critical"] >= 8 and severities["high"] >= 10, severities
    assert severities["medium"] >= 5 and severities["low"] >= 2, severities
    by_name = {r["alert"]: r for r in rules}
    for name in PACK_CRITICAL:
        assert by_name[name]["labels"]["severity"] == "critical", name
    for name in PACK_NAMED:
        assert name in by_name
    assert by_name["Watchdog"]["expr"] == "vector(1)"
    for name in ("AuthenticationFailureSpike", "SecurityEventsSpike"):
        assert by_name[name]["labels"]["team"] == "security"


def test_every_catalogue_group_and_the_collector_have_alerts() -> None:
    groups = {g["name"] for p in committed_rule_files() for g in yaml.safe_load(p.read_text())["groups"]}
    for group in (*GROUPS, "slo", "collector", "meta"):
        assert f"covet-{group.replace('_', '-')}" in groups, group
    config = load_config()
    for group in GROUPS:
        assert config.alerts_in_group(group), group
    assert {a.name for a in config.alerts_in_group("collector")} == {
        "CollectorDown",
        "CollectorRefusingPoints",
        "CollectorExportFailures",
    }


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda r: r["alert"])
def test_alert_labels_and_annotations(rule: dict) -> None:
    config = load_config()
    alert = config.alert(rule["alert"])
    assert rule["labels"] == {
        "severity": alert.severity,
        "team": alert.team,
        **alert_rules.extra_labels(alert),
    }
    ann = rule["annotations"]
    assert set(ann) == {"summary", "description", "runbook_url", "dashboard_url"}
    assert ann["runbook_url"] == config.runbook_base_url + alert.runbook_path
    assert (tools.REPO_ROOT / "runbooks" / alert.runbook_file).name == alert.runbook_file
    assert alert.dashboard_uid in DASHBOARD_UIDS
    assert ann["dashboard_url"].startswith(f"{config.grafana_url}/d/{alert.dashboard_uid}")
    for label in alert.by:
        # the labels that locate the alert are in the summary
        assert f"$labels.{label}" in ann["summary"], label
    # the dashboard exists and has a variable for every label the link fills in
    dashboards = {json.loads(p.read_text())["uid"]: p for p in (tools.REPO_ROOT / "grafana").rglob("*.json")}
    dashboard = json.loads(dashboards[alert.dashboard_uid].read_text())
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    linked = re.findall(r"var-([a-z_]+)=", ann["dashboard_url"])
    assert set(linked) <= variables, f"{alert.dashboard_uid} lacks variables {set(linked) - variables}"
    if alert.by:
        assert "job" in linked
    if alert.limits and alert.name not in ("HealthCheckFailing", "HealthCheckDegraded"):
        # the description quotes the threshold as the runbooks do
        assert alert.threshold().text in ann["description"] or "$value" in ann["description"]
