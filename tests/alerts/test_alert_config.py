"""The definition (covet_otel/mixin/config.py): defaults consistent with the contract the three
consumers share, overrides from YAML with errors naming the key, the fast test profile, the
`covet-otel mixin build` command, and the generated table of docs/alerts.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from harness import tools

from covet_otel.catalogue import GROUPS
from covet_otel.mixin import alerts as alert_rules
from covet_otel.mixin import alerts_doc
from covet_otel.mixin.config import (
    ALERT_GROUPS,
    DASHBOARD_UIDS,
    SEVERITIES,
    TEAMS,
    ConfigError,
    kebab_case,
    load_config,
)

HERE = Path(__file__).parent


def write(tmp_path: Path, text: str, name: str = "override.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_follow_the_shared_contract() -> None:
    config = load_config()
    assert set(alert_rules.BUILDERS) == {a.name for a in config.alerts}
    assert set(ALERT_GROUPS) == {*GROUPS, "slo", "collector", "meta"}
    for a in config.alerts:
        assert a.group in ALERT_GROUPS and a.severity in SEVERITIES and a.team in TEAMS, a.name
        assert a.dashboard_uid in DASHBOARD_UIDS, a.name
        assert (a.severity == "none") == (a.name == "Watchdog"), a.name
        assert a.runbook_file == (
            "http-slo-burn-rate.md" if a.group == "slo" else kebab_case(a.name) + ".md"
        ), a.name
        for t in a.thresholds:
            assert t.unit in ("percent", "ratio", "seconds", "bytes", "per_second", "count", "transactions")
    assert kebab_case("DatabaseConnectionPoolExhausted") == "database-connection-pool-exhausted"
    assert kebab_case("PostgreSQLTransactionIDWraparound") == "postgresql-transaction-id-wraparound"
    assert kebab_case("HTTPAvailabilityBudgetBurnFast") == "http-availability-budget-burn-fast"
    assert config.alert("DiskSpaceLow").threshold().text == "90 %"
    assert config.alert("BackupMissing").threshold("max_age").text == "1d2h"
    assert config.slo.windows == ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    assert config.runbook_base_url == "https://github.com/your-org/covet-otel/blob/main/runbooks/"
    assert config.dashboard_url(config.alert("DatabaseHighQueryLatency")) == (
        "http://localhost:3000/d/covetpy-query-perf?var-job={{ $labels.job | urlquery }}"
        "&var-instance={{ $labels.instance | urlquery }}&var-pool={{ $labels.pool | urlquery }}"
    )


def test_overrides_apply_and_later_files_win(tmp_path: Path) -> None:
    first = write(
        tmp_path,
        """
grafana_url: https://grafana.example.com/
selectors: {app: 'job=~"shop|billing"'}
slo: {availability_target: 0.9995}
alerts:
  DiskSpaceLow: {for: 10m, thresholds: {used_percent: 85}, severity: high, team: ops}
  PostgreSQLReplicationLag: {enabled: false}
""",
        "a.yaml",
    )
    second = write(tmp_path, "alerts: {DiskSpaceLow: {thresholds: {used_percent: 80}}}\n", "b.yaml")
    config = load_config(first, second)
    disk = config.alert("DiskSpaceLow")
    assert (disk.for_, disk.threshold().value, disk.severity, disk.team) == ("10m", 80.0, "high", "ops")
    assert "PostgreSQLReplicationLag" not in {a.name for a in config.enabled_alerts}
    assert config.dashboard_url(disk).startswith("https://grafana.example.com/d/covetpy-system?")
    files = alert_rules.rule_files(config)
    rules = {r.get("alert"): r for f in files.values() for g in f["groups"] for r in g["rules"]}
    assert "PostgreSQLReplicationLag" not in rules
    assert rules["DiskSpaceLow"]["for"] == "10m"
    assert rules["DiskSpaceLow"]["labels"] == {"severity": "high", "team": "ops"}
    assert rules["DiskSpaceLow"]["expr"].endswith("* 100 > 80")
    assert 'covet_disk_usage_bytes{job=~"shop|billing"}' in rules["DiskSpaceLow"]["expr"]
    assert "(1 - 0.9995)" in rules["HTTPAvailabilityBudgetBurnFast"]["expr"]
    assert "(threshold 80 %)" in rules["DiskSpaceLow"]["annotations"]["description"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alerts: {DiskSpaceLow: {fo: 1m}}", "alerts.DiskSpaceLow.fo: unknown key"),
        ("alerts: {DiskSpaceLoww: {for: 1m}}", "alerts.DiskSpaceLoww: unknown key"),
        (
            "alerts: {DiskSpaceLow: {for: 10 minutes}}",
            "alerts.DiskSpaceLow.for: '10 minutes' is not a Prometheus duration",
        ),
        (
            "alerts: {DiskSpaceLow: {thresholds: {used_percent: high}}}",
            "alerts.DiskSpaceLow.thresholds.used_percent: expected a number, got str 'high'",
        ),
        (
            "alerts: {DiskSpaceLow: {thresholds: {used: 80}}}",
            "alerts.DiskSpaceLow.thresholds.used: unknown key (known: used_percent)",
        ),
        (
            "alerts: {DiskSpaceLow: {severity: urgent}}",
            "alerts.DiskSpaceLow.severity: 'urgent' is not one of critical, high, medium, low, none",
        ),
        (
            "alerts: {DiskSpaceLow: {enabled: 'no'}}",
            "alerts.DiskSpaceLow.enabled: expected true or false, got str 'no'",
        ),
        ("alerts: {Watchdog: {window: 5m}}", "alerts.Watchdog.window: Watchdog has no window to override"),
        ("selectors: {app: 3}", "selectors.app: expected a string, got int 3"),
        ("slo: {availability_target: 99.9}", "slo.availability_target: must be between 0 and 1"),
        (
            "slo: {latency_threshold_seconds: 0.3}",
            "slo.latency_threshold_seconds: 0.3 is not a bucket boundary",
        ),
        (
            "slo: {burn_rates: [{long_window: 1h, short_window: 5m, factor: 14.4}]}",
            "slo.burn_rates[0]: missing severity",
        ),
        (
            "alertmanager: {low_group_interval: hourly}",
            "alertmanager.low_group_interval: 'hourly' is not a Prometheus duration",
        ),
        ("alertmanager: {smtp_require_tls: 1}", "alertmanager.smtp_require_tls: expected true or false"),
        ("grafana: x", "grafana: unknown key"),
        ("- a list", "(top level): expected a mapping"),
    ],
)
def test_bad_overrides_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_fast_profile_is_an_override_of_the_same_definition() -> None:
    profile = HERE / "profile-fast.yaml"
    overridden = yaml.safe_load(profile.read_text())["alerts"]
    config, default = load_config(profile), load_config()
    assert config.evaluation_interval == "1s"
    assert [a.name for a in config.alerts] == [a.name for a in default.alerts]
    for a, d in zip(config.alerts, default.alerts):
        # the fast profile shortens time; it changes no severity, team or limit it does not name
        assert (a.severity, a.team) == (d.severity, d.team)
        changed = {t.name for t, u in zip(a.thresholds, d.thresholds) if t.value != u.value}
        assert changed <= set(overridden.get(a.name, {}).get("thresholds", {})), a.name


def test_cli_builds_with_overrides_and_reports_bad_ones(tmp_path: Path) -> None:
    override = write(tmp_path, "alerts: {DiskSpaceLow: {thresholds: {used_percent: 85}}}\n")
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "covet_otel.cli", "mixin", "build"]
    result = subprocess.run(
        [*cli, "--config", str(override), "--out", str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    system = yaml.safe_load((out / "alerts" / "covet-system.rules.yml").read_text())
    disk = next(r for r in system["groups"][0]["rules"] if r.get("alert") == "DiskSpaceLow")
    assert disk["expr"].endswith("> 85")
    assert (out / "alerts" / "alertmanager.yml").is_file()
    assert (out / "alerts" / "templates" / "covet.tmpl").is_file()
    bad = write(tmp_path, "alerts: {DiskSpaceLow: {fo: 1m}}\n", "bad.yaml")
    result = subprocess.run([*cli, "--config", str(bad), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "alerts.DiskSpaceLow.fo: unknown key" in result.stderr


def test_docs_alert_table_is_current() -> None:
    doc = tools.REPO_ROOT / "docs" / "alerts.md"
    text = doc.read_text()
    assert alerts_doc.table(load_config()) in text, "docs/alerts.md is stale: run `covet-otel mixin build`"
    for a in load_config().alerts:
        assert f"| {a.name} |" in text
