"""`covet-otel check` against the real whole stack (harness.stack): healthy, then with parts removed
(a group never exercised, no Alertmanager, rules not loaded, the collector stopped), read as a user
reads it: the exit status, the JSON report and the text."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from harness.stack import APP_JOB, Stack, shipped_rule_files

from covet_otel.check import Requirement, parse

pytestmark = pytest.mark.slow


def check(prometheus_url: str, *args: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "covet_otel.cli",
            "check",
            "--prometheus-url",
            prometheus_url,
            "--format",
            "json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def alerts_by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["alert"]: a for a in report["alerts"]}


def kinds(alert: dict[str, Any]) -> set[str]:
    return {r["kind"] for r in alert["reasons"]}


def wait_until(predicate, timeout: float = 60.0, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------------
# the requirement analysis (pure logic on parsed PromQL)
# ---------------------------------------------------------------------------------------------------
def names(req: Requirement) -> set[str]:
    return {s.name for s in req.selectors()}


def test_absent_needs_nothing_or_needs_one_side_unless_needs_the_left() -> None:
    assert parse('absent(up{job="x"})').kind == "none"
    either = parse("rate(a_total[5m]) > 0 or b == 1")
    assert either.kind == "any" and names(either) == {"a_total", "b"}
    assert names(parse("a unless b")) == {"a"}
    both = parse('sum by (job) (rate(a_total{job=~".+"}[5m])) / sum by (job) (rate(b_total[5m]))')
    assert both.kind == "all" and names(both) == {"a_total", "b_total"}
    selector = next(parse('{__name__="x", job=~".+", pool!=""}').selectors())
    assert selector.render() == 'x{job=~".+", pool!=""}'
    # inside *_over_time the selector's lookback counts: a series that just disappeared still has data
    gone = parse("max_over_time(x[1h]) unless x")
    assert [s.presence() for s in gone.selectors()] == ["last_over_time(x[3600s])"]
    assert [s.presence() for s in parse("rate(x[5m])").selectors()] == ["x"]


# ---------------------------------------------------------------------------------------------------
# on the shared healthy stack
# ---------------------------------------------------------------------------------------------------
def test_a_healthy_stack_has_every_critical_alert_able_to_fire(stack: Stack) -> None:
    # recording rules run at their group's interval: give every group one evaluation on its data
    time.sleep(max(0.0, 35 - (time.monotonic() - stack.started_at)))
    code, report = check(stack.prometheus.url, "--job", APP_JOB)
    assert code == 0, [a for a in report["alerts"] if not a["can_fire"]]
    summary = report["summary"]
    assert summary["critical_alerts"] >= 1 and summary["critical_alerts_blind"] == 0
    assert summary["rules_loaded"] == summary["rules_shipped"]
    assert report["alertmanagers"] == [f"{stack.alertmanager.url}/api/v2/alerts"]
    assert report["findings"] == []
    # what has not happened on a healthy stack is told apart from what is blind
    waiting = {a["alert"] for a in report["alerts"] if a["waits_for"]}
    assert "BackupFailed" in waiting
    failed = alerts_by_name(report)["BackupFailed"]["waits_for"][0]
    assert failed["kind"] == "not_yet" and 'outcome="failure"' in failed["detail"]


def test_the_text_report_says_ok_and_counts(stack: Stack) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "covet_otel.cli",
            "check",
            "--prometheus-url",
            stack.prometheus.url,
            "--job",
            APP_JOB,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"covet-otel check: {stack.prometheus.url}, job {APP_JOB!r}"
    assert lines[-1] == "OK: every critical alert can fire"
    assert any(line.startswith("alerts: ") and "can fire; critical: " in line for line in lines)
    assert any(line.startswith("panels: ") and "have data" in line for line in lines)


def test_a_job_that_does_not_exist_makes_the_app_alerts_blind_and_names_the_jobs_seen(stack: Stack) -> None:
    code, report = check(stack.prometheus.url, "--job", "no-such-service")
    assert code == 1
    pool = alerts_by_name(report)["DatabaseConnectionPoolExhausted"]
    assert not pool["can_fire"] and pool["severity"] == "critical"
    reason = next(r for r in pool["reasons"] if r["kind"] == "job_missing")
    assert 'job="no-such-service"' in reason["detail"] and APP_JOB in reason["detail"]
    # server-side alerts do not depend on the app's job
    assert alerts_by_name(report)["PostgreSQLDown"]["can_fire"]
    panels = {p["title"]: p for d in report["dashboards"] for p in d["panels"] if d["uid"] == "covet-http"}
    assert panels and not any(p["has_data"] for p in panels.values())


def test_an_unreachable_prometheus_is_exit_status_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "covet_otel.cli", "check", "--prometheus-url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("covet-otel check: cannot ask Prometheus at http://127.0.0.1:9")


# ---------------------------------------------------------------------------------------------------
# parts removed, one after the other, on a stack of this module's own
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broken_stack() -> Iterator[Stack]:
    """No backup or migration job ever runs: that group is never exercised."""
    with Stack(rule_files=shipped_rule_files(), jobs=False) as stack:
        yield stack


def test_a_group_never_exercised_is_blind_with_the_metric_named(broken_stack: Stack) -> None:
    code, report = check(broken_stack.prometheus.url, "--job", APP_JOB)
    assert code == 1
    failed = alerts_by_name(report)["BackupFailed"]
    assert failed["severity"] == "critical" and not failed["can_fire"]
    never = [r for r in failed["reasons"] if r["kind"] == "metric_never_seen"]
    assert {r["metric"] for r in never} >= {"covet_backup_runs_total"}
    assert "the app does not export it" in never[0]["hint"]
    boards = {d["uid"]: d for d in report["dashboards"]}
    assert not any(p["has_data"] for p in boards["covetpy-backup"]["panels"])
    assert all(p["has_data"] for p in boards["covetpy-db-pool"]["panels"])


def test_no_alertmanager_configured_is_a_finding_and_fails(broken_stack: Stack) -> None:
    prom = broken_stack.prometheus
    prom.alerting = False
    prom.reload()
    try:
        wait_until(lambda: not prom.api_get("/api/v1/alertmanagers")["activeAlertmanagers"])
        code, report = check(prom.url, "--job", APP_JOB)
        assert code == 1
        assert [f["kind"] for f in report["findings"]] == ["alertmanager_not_configured"]
        assert all("alertmanager_not_configured" in kinds(a) for a in report["alerts"])
    finally:
        prom.alerting = True
        prom.reload()


def test_rules_not_loaded_is_a_finding_and_fails(broken_stack: Stack) -> None:
    prom = broken_stack.prometheus
    rule_files = list(prom.rule_files)
    prom.rule_files = []
    prom.reload()
    try:
        wait_until(lambda: not prom.rules())
        code, report = check(prom.url, "--job", APP_JOB)
        assert code == 1
        assert report["summary"]["rules_loaded"] == {"alerting": 0, "recording": 0}
        assert "rules_not_loaded" in [f["kind"] for f in report["findings"]]
        assert not any(a["can_fire"] for a in report["alerts"])
        # a panel reading a recording rule says so
        slo = next(d for d in report["dashboards"] if d["uid"] == "covet-slo")
        reasons = [r for p in slo["panels"] for r in p["reasons"]]
        assert any(r["kind"] == "recording_rule_not_loaded" for r in reasons)
    finally:
        prom.rule_files = rule_files
        prom.reload()


def test_a_stopped_collector_leaves_the_app_and_server_metrics_never_seen(broken_stack: Stack) -> None:
    prom = broken_stack.prometheus
    with broken_stack.collector.stopped():
        # a failed scrape marks every series of the target stale at once
        wait_until(lambda: not prom.query('covet_http_requests_total{job="shop"}'))
        # and both of the collector's targets (exporter and own telemetry) had a failed scrape:
        # they are scraped at their own moments, seconds apart on a loaded machine
        both = {"otelcol", "otelcol-self"}
        wait_until(lambda: both <= {t["labels"]["job"] for t in prom.targets() if t["health"] == "down"})
        code, report = check(prom.url, "--job", APP_JOB)
    assert code == 1
    alerts = alerts_by_name(report)
    pool = alerts["DatabaseConnectionPoolExhausted"]
    assert not pool["can_fire"] and "metric_never_seen" in kinds(pool), pool
    # PostgreSQLDown also fires when its series disappear (max_over_time(x[1h]) unless x): not blind
    assert alerts["PostgreSQLDown"]["can_fire"], alerts["PostgreSQLDown"]
    assert {t["job"] for t in report["targets_down"]} == {"otelcol", "otelcol-self"}
    # instant panels go blind at once; rate() panels still show the last 5 minutes, as Grafana would
    http = next(d for d in report["dashboards"] if d["uid"] == "covet-http")
    panels = {p["title"]: p for p in http["panels"]}
    in_flight = panels["Requests in flight by method"]
    assert not in_flight["has_data"] and not in_flight["waiting"]
    assert [(r["kind"], r["metric"]) for r in in_flight["reasons"]] == [
        ("metric_never_seen", "covet_http_requests_in_flight")
    ]
    assert panels["Requests per second by route"]["has_data"]
