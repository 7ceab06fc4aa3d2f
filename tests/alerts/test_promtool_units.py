"""`promtool test rules` on alerts/tests/*.test.yml, and the coverage rule: every alert of the rule
files has a case where it fires (exact labels and annotations), a case where healthy series keep it
silent, and, for critical alerts, a case of missing data. The list of alerts comes from the rule
files, so a new alert without cases fails here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from harness import tools

from covet_otel.mixin import alerts as alert_rules
from covet_otel.mixin.config import apply_overrides, load_config

ALERTS_DIR = tools.REPO_ROOT / "alerts"
TESTS_DIR = ALERTS_DIR / "tests"
ANNOTATIONS = {"summary", "description", "runbook_url", "dashboard_url"}


def unit_test_files() -> list[Path]:
    return sorted(TESTS_DIR.glob("*.test.yml"))


def rule_alerts() -> dict[str, dict]:
    found = {}
    for path in ALERTS_DIR.glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found[rule["alert"]] = rule
    return found


def unit_test_groups() -> list[dict]:
    groups = []
    for path in unit_test_files():
        for group in yaml.safe_load(path.read_text())["tests"]:
            groups.append({**group, "_file": path.name})
    return groups


def run_promtool(files: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools.promtool()), "test", "rules", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_promtool_unit_tests_pass() -> None:
    files = unit_test_files()
    assert len(files) >= 11
    result = run_promtool(files)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert result.stdout.count("SUCCESS") == len(files)
    assert "FAILED" not in result.stdout


@pytest.mark.parametrize("alertname", sorted(rule_alerts()))
def test_every_alert_has_its_cases(alertname: str) -> None:
    rule = rule_alerts()[alertname]
    groups = {g["name"]: g for g in unit_test_groups() if g.get("name", "").startswith(f"{alertname}: ")}

    def cases(kind: str) -> list[dict]:
        group = groups.get(f"{alertname}: {kind}")
        assert group is not None, f'no test group "{alertname}: {kind}" in alerts/tests/'
        found = [t for t in group.get("alert_rule_test", []) if t["alertname"] == alertname]
        assert found, f'"{alertname}: {kind}" evaluates no alert_rule_test for {alertname}'
        return found

    firing = [t for t in cases("fires") if t.get("exp_alerts")]
    assert firing, f"{alertname}: no case where it fires"
    for test in firing:
        for alert in test["exp_alerts"]:
            labels = alert["exp_labels"]
            assert labels["severity"] == rule["labels"]["severity"]
            assert labels["team"] == rule["labels"]["team"]
            assert set(alert["exp_annotations"]) == ANNOTATIONS, f"{alertname}: annotations not all asserted"
    if alertname != "Watchdog":  # always fires: there are no healthy series for it
        assert any(t.get("exp_alerts") == [] for t in cases("healthy")), f"{alertname}: no silent case"
    if rule["labels"]["severity"] == "critical":
        cases("missing data")


def test_unit_tests_fail_when_a_threshold_changes(tmp_path: Path) -> None:
    """The cases are tied to the thresholds: rules built with DiskSpaceLow at 96 % (the fires case
    uses 95 %) make the committed tests fail."""
    override = {"alerts": {"DiskSpaceLow": {"thresholds": {"used_percent": 96}}}}
    config = apply_overrides(load_config(), override)
    out = tmp_path / "alerts"
    alert_rules.write(config, out)
    (out / "tests").mkdir()
    shutil.copy(TESTS_DIR / "system.test.yml", out / "tests" / "system.test.yml")
    result = run_promtool([out / "tests" / "system.test.yml"])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "name: DiskSpaceLow: fires" in output
    assert "name: HighMemoryUsage" not in output
