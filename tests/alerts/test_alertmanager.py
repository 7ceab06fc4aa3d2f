"""alerts/alertmanager.yml: amtool checks, the routing table of every alert, and a real Alertmanager
delivering to a webhook sink (PagerDuty, Slack and dead man's switch endpoints) and an SMTP sink,
with grouping, inhibition and time-based muting read back from its API."""

from __future__ import annotations

import datetime
import subprocess
import time
from typing import Any

import pytest
import yaml
from conftest import ROUTING_KEYS, AlertingEnv
from harness import tools

ALERTS_DIR = tools.REPO_ROOT / "alerts"
AM_CONFIG = ALERTS_DIR / "alertmanager.yml"

# Where each alert must go. Written out (not computed from the routing tree) so that a new alert, or
# a routing change, fails here until someone states where it should go.
EXPECTED_RECEIVERS: dict[str, str] = {
    "DatabaseConnectionPoolExhausted": "pager",
    "DatabaseConnectionPoolLeaks": "pager",
    "HighMemoryUsage": "pager",
    "DiskSpaceLow": "pager",
    "ServiceDown": "pager",
    "CacheConnectionErrors": "pager",
    "HealthCheckFailing": "pager",
    "BackupFailed": "pager",
    "HTTPAvailabilityBudgetBurnFast": "pager",
    "HTTPLatencyBudgetBurnFast": "pager",
    "CollectorDown": "pager",
    "PostgreSQLDown": "pager-database",
    "DatabaseHighQueryLatency": "chat-email",
    "DatabaseQueryErrors": "chat-email",
    "HighCPUUsage": "chat-email",
    "HighHTTPErrorRate": "chat-email",
    "RedisMemoryHigh": "chat-email",
    "BackupMissing": "chat-email",
    "MigrationStuck": "chat-email",
    "MigrationFailed": "chat-email",
    "CollectorRefusingPoints": "chat-email",
    "CollectorExportFailures": "chat-email",
    "CovetMetricsAbsent": "chat-email",
    "PostgreSQLTooManyConnections": "chat-email-database",
    "PostgreSQLLongRunningTransaction": "chat-email-database",
    "PostgreSQLTransactionIDWraparound": "chat-email-database",
    "PostgreSQLReplicationLag": "chat-email-database",
    "AuthenticationFailureSpike": "security",
    "SecurityEventsSpike": "security",
    "PostgreSQLDeadlocks": "chat",
    "HighHTTPLatency": "chat",
    "RedisRejectedConnections": "chat",
    "HealthCheckDegraded": "chat",
    "BusinessEventsStopped": "chat",
    "HTTPAvailabilityBudgetBurnSlow": "chat",
    "HTTPLatencyBudgetBurnSlow": "chat",
    "PostgreSQLLowCacheHitRatio": "email-digest",
    "CacheLowHitRatio": "email-digest",
    "MigrationsPending": "email-digest",
    "Watchdog": "deadmans-switch",
}
# label sets no default alert has, routed by the same tree (a user's alert or severity override)
EXTRA_ROUTES = [
    ({"alertname": "CustomSecurityCritical", "severity": "critical", "team": "security"}, "security-pager"),
    ({"alertname": "CustomSecurityLow", "severity": "low", "team": "security"}, "security"),
    ({"alertname": "CustomNoSeverity", "team": "platform"}, "chat-email"),
]


def rule_labels() -> dict[str, dict[str, str]]:
    found = {}
    for path in ALERTS_DIR.glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found[rule["alert"]] = {"alertname": rule["alert"], **rule["labels"]}
    return found


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tools.amtool()), *args], capture_output=True, text=True, timeout=60)


def test_amtool_check_config() -> None:
    result = amtool("check-config", str(AM_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert " - 5 inhibit rules" in result.stdout
    assert " - 9 receivers" in result.stdout
    assert " - 1 templates" in result.stdout


def test_no_secret_in_the_shipped_config() -> None:
    config = yaml.safe_load(AM_CONFIG.read_text())
    for receiver in config["receivers"]:
        for pd in receiver.get("pagerduty_configs", []):
            assert "routing_key" not in pd and pd["routing_key_file"].startswith("/etc/alertmanager/secrets/")
        for slack in receiver.get("slack_configs", []):
            assert "api_url" not in slack and slack["api_url_file"].startswith("/etc/alertmanager/secrets/")
        for hook in receiver.get("webhook_configs", []):
            assert "url" not in hook and hook["url_file"].startswith("/etc/alertmanager/secrets/")
        for mail in receiver.get("email_configs", []):
            assert "auth_password" not in mail
    assert "smtp_auth_password" not in config["global"]


def test_every_alert_has_a_routing_expectation() -> None:
    assert set(rule_labels()) == set(EXPECTED_RECEIVERS)


@pytest.mark.parametrize("alertname", sorted(EXPECTED_RECEIVERS))
def test_amtool_routes(alertname: str) -> None:
    labels = {**rule_labels()[alertname], "job": "shop", "instance": "app-1:9464"}
    expected = EXPECTED_RECEIVERS[alertname]
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={AM_CONFIG}",
        f"--verify.receivers={expected}",
        *(f"{k}={v}" for k, v in labels.items()),
    )
    assert result.returncode == 0, f"{alertname} {labels}: {result.stdout}{result.stderr}"
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(
    ("labels", "expected"), EXTRA_ROUTES, ids=[r[1] + "-" + r[0]["alertname"] for r in EXTRA_ROUTES]
)
def test_amtool_routes_by_team(labels: dict[str, str], expected: str) -> None:
    result = amtool(
        "config", "routes", "test", f"--config.file={AM_CONFIG}", *(f"{k}={v}" for k, v in labels.items())
    )
    assert result.stdout.strip() == expected, result.stdout + result.stderr


# ── a real Alertmanager ─────────────────────────────────────────────────────────────────────────


def alert(name: str, *, ends: bool = False, **labels: str) -> dict[str, Any]:
    """An alert as Prometheus posts it, with the rule's own severity and team."""
    full = {**rule_labels()[name], "job": "shop", **labels}
    instance = full.get("instance", "")
    body: dict[str, Any] = {
        "labels": full,
        "annotations": {
            "summary": f"{name} summary {instance}".strip(),
            "description": f"{name} at 97.5 %",
            "runbook_url": f"https://runbooks.example/{name}.md",
            "dashboard_url": f"https://grafana.example/d/x?var-instance={instance}",
        },
    }
    if ends:
        body["endsAt"] = (
            datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
        ).isoformat()
    return body


def calls(env: AlertingEnv, path: str) -> list[Any]:
    return [c for c in env.webhook.received if c.path == path]


def test_critical_reaches_pager_chat_and_email_then_resolves(alerting: Any) -> None:
    env: AlertingEnv = alerting()
    env.post(alert("DiskSpaceLow", instance="app-1:9464"))

    pd = env.webhook.wait_for(lambda c: c.path == "/pagerduty", timeout=30).body
    assert pd["routing_key"] == ROUTING_KEYS["critical"]  # read from the secret file
    assert pd["event_action"] == "trigger"
    assert pd["payload"]["summary"] == "[FIRING:1] DiskSpaceLow (shop)"
    details = pd["payload"]["custom_details"]["alerts"]
    for text in (
        "[critical] DiskSpaceLow summary app-1:9464",
        "DiskSpaceLow at 97.5 %",
        "Runbook: https://runbooks.example/DiskSpaceLow.md",
        "Dashboard: https://grafana.example/d/x?var-instance=app-1:9464",
    ):
        assert text in details

    slack = env.webhook.wait_for(lambda c: c.path == "/slack", timeout=30).body
    assert slack["channel"] == "#critical"
    attachment = slack["attachments"][0]
    assert attachment["title"] == "[FIRING:1] DiskSpaceLow (shop)"
    assert "Runbook: https://runbooks.example/DiskSpaceLow.md" in attachment["text"]
    assert "DiskSpaceLow at 97.5 %" in attachment["text"]

    mail = env.smtp.wait_for_subject("DiskSpaceLow", timeout=30)
    assert mail.recipients == ["oncall@example.com"]
    assert mail.subject == "[FIRING:1] DiskSpaceLow (shop)"
    assert "DiskSpaceLow at 97.5 %" in mail.text
    assert 'href="https://runbooks.example/DiskSpaceLow.md"' in mail.text
    assert 'href="https://grafana.example/d/x?var-instance=app-1:9464"' in mail.text

    env.post(alert("DiskSpaceLow", instance="app-1:9464", ends=True))
    pd = env.webhook.wait_for(lambda c: c.path == "/pagerduty" and c.body["event_action"] == "resolve", 30)
    assert pd.body["routing_key"] == ROUTING_KEYS["critical"]
    resolved = env.smtp.wait_for_subject("[RESOLVED] DiskSpaceLow (shop)", timeout=30)
    assert "RESOLVED:" in resolved.text


def test_each_severity_and_team_reaches_its_receivers(alerting: Any) -> None:
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%A").lower()
    # working hours: all of today, so the low digest is not muted in this test
    env: AlertingEnv = alerting(
        working_days=f"{today}:{today}", working_hours_start="00:00", working_hours_end="24:00"
    )
    env.post(
        alert("HighCPUUsage", instance="app-1:9464"),
        alert("HighHTTPLatency", route="/search"),
        alert("AuthenticationFailureSpike"),
        alert("PostgreSQLDown", job="postgresql", instance="db:5432", cause="exporter_reports_down"),
        alert("PostgreSQLReplicationLag", job="postgresql", instance="replica:5432"),
        alert("CacheLowHitRatio"),
        alert("Watchdog"),
    )
    expected_mail = {
        "HighCPUUsage": ["team@example.com"],
        "AuthenticationFailureSpike": ["security@example.com"],
        "PostgreSQLDown": ["dba@example.com"],
        "PostgreSQLReplicationLag": ["dba@example.com"],
        "CacheLowHitRatio": ["ops@example.com"],
    }
    for name, recipients in expected_mail.items():
        assert env.smtp.wait_for_subject(name, timeout=30).recipients == recipients, name
    expected_chat = {
        "HighCPUUsage": "#alerts",
        "HighHTTPLatency": "#alerts",
        "AuthenticationFailureSpike": "#security",
        "PostgreSQLDown": "#critical",
        "PostgreSQLReplicationLag": "#alerts",
    }
    for name, channel in expected_chat.items():
        call = env.webhook.wait_for(
            lambda c, n=name: c.path == "/slack" and f"] {n} (" in c.body["attachments"][0]["title"], 30
        )
        assert call.body["channel"] == channel, name
    watchdog = env.webhook.wait_for(lambda c: c.path == "/deadman", timeout=30)
    assert watchdog.has_alert("Watchdog", "firing")
    # the dead man's switch hears from it again and again (repeat interval 2s here)
    env.webhook.wait_for(lambda c: len(calls(env, "/deadman")) >= 2, timeout=30)
    time.sleep(3)  # anything else would have arrived by now (group_wait 1s)
    pages = [c.body["payload"]["summary"] for c in calls(env, "/pagerduty")]
    assert pages == ["[FIRING:1] PostgreSQLDown (postgresql)"]  # only the critical one pages
    mails = {m.subject for m in env.smtp.received}
    assert not any("HighHTTPLatency" in s for s in mails)  # medium: chat only
    assert not any("Watchdog" in s for s in mails)
    slack_titles = [c.body["attachments"][0]["title"] for c in calls(env, "/slack")]
    assert not any("CacheLowHitRatio" in t for t in slack_titles)  # low: the email digest only


def test_grouping_by_alertname_and_job(alerting: Any) -> None:
    env: AlertingEnv = alerting()
    env.post(
        alert("DiskSpaceLow", instance="app-1:9464"),
        alert("DiskSpaceLow", instance="app-2:9464"),
        alert("DiskSpaceLow", job="billing", instance="bill-1:9464"),
    )
    shop = env.smtp.wait_for_subject("[FIRING:2] DiskSpaceLow (shop)", timeout=30)
    assert "DiskSpaceLow summary app-1:9464" in shop.text and "DiskSpaceLow summary app-2:9464" in shop.text
    env.smtp.wait_for_subject("[FIRING:1] DiskSpaceLow (billing)", timeout=30)
    time.sleep(3)
    subjects = sorted(m.subject for m in env.smtp.received)
    assert subjects == ["[FIRING:1] DiskSpaceLow (billing)", "[FIRING:2] DiskSpaceLow (shop)"]
    assert len(calls(env, "/pagerduty")) == 2
    groups = [g for g in env.groups() if g["labels"].get("alertname") == "DiskSpaceLow"]
    assert sorted(g["labels"]["job"] for g in groups) == ["billing", "shop"]
    assert all(
        g["labels"] == {"alertname": "DiskSpaceLow", "team": "platform", "job": g["labels"]["job"]}
        for g in groups
    )


def test_inhibition(alerting: Any) -> None:
    env: AlertingEnv = alerting()
    env.post(
        # the process app-1 is down: its other alerts are symptoms
        alert("ServiceDown", instance="app-1:9464", cause="scrape_failed"),
        alert("HighCPUUsage", instance="app-1:9464"),
        alert("HighCPUUsage", instance="app-2:9464"),
        # the job billing is gone entirely (no instance label): all of its alerts are silenced
        alert("ServiceDown", job="billing", cause="series_absent"),
        alert("HealthCheckFailing", job="billing", instance="bill-1:9464", check="db"),
        # the fast burn pages; the slow burn of the same SLO and job waits
        alert("HTTPAvailabilityBudgetBurnFast"),
        alert("HTTPAvailabilityBudgetBurnSlow"),
        alert("HTTPLatencyBudgetBurnSlow"),
        # the collector is down: the absent-data alerts it causes are silenced, others are not
        alert("CollectorDown", job="otelcol", instance="otelcol:8889", cause="scrape_failed"),
        alert("CovetMetricsAbsent", job="", cause="series_absent"),
        alert("BackupMissing", job="covet-backup", backup="nightly", cause="series_absent"),
        alert("MigrationStuck", job="shop-migrate", instance="m1", migrator="alembic"),
        # a critical silences the high of the same alert and instance
        {
            **alert("DiskSpaceLow", instance="app-3:9464"),
            "labels": {**alert("DiskSpaceLow")["labels"], "instance": "app-3:9464", "severity": "high"},
        },
        alert("DiskSpaceLow", instance="app-3:9464"),
    )
    env.smtp.wait_for_subject("MigrationStuck", timeout=30)
    env.smtp.wait_for_subject("HighCPUUsage", timeout=30)
    time.sleep(3)

    inhibited = [
        ("HighCPUUsage", {"instance": "app-1:9464"}),
        ("HealthCheckFailing", {"job": "billing"}),
        ("HTTPAvailabilityBudgetBurnSlow", {}),
        ("CovetMetricsAbsent", {}),
        ("BackupMissing", {}),
        ("DiskSpaceLow", {"severity": "high"}),
    ]
    for name, labels in inhibited:
        status = env.status_of(name, **labels)
        assert status["state"] == "suppressed" and status["inhibitedBy"], (name, status)
    active = [
        ("HighCPUUsage", {"instance": "app-2:9464"}),
        ("HTTPLatencyBudgetBurnSlow", {}),
        ("MigrationStuck", {}),
        ("ServiceDown", {"job": "shop"}),
        ("CollectorDown", {}),
        ("DiskSpaceLow", {"severity": "critical"}),
    ]
    for name, labels in active:
        status = env.status_of(name, **labels)
        assert status["state"] == "active" and not status["inhibitedBy"], (name, status)

    delivered = " ".join(m.text for m in env.smtp.received) + " ".join(
        str(c.body) for c in env.webhook.received
    )
    assert "HighCPUUsage summary app-2:9464" in delivered
    assert "HighCPUUsage summary app-1:9464" not in delivered
    for name in (
        "HealthCheckFailing",
        "HTTPAvailabilityBudgetBurnSlow",
        "CovetMetricsAbsent",
        "BackupMissing",
    ):
        assert f"{name} summary" not in delivered, name
    assert "HTTPLatencyBudgetBurnSlow summary" in delivered


def test_time_based_muting(alerting: Any) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    tomorrow = days[(now.weekday() + 1) % 7]
    # working hours only tomorrow (so now is outside them), and a maintenance window all of today
    env: AlertingEnv = alerting(
        working_days=f"{tomorrow}:{tomorrow}",
        maintenance_day=days[now.weekday()],
        maintenance_start="00:00",
        maintenance_end="24:00",
    )
    env.post(
        alert("CacheLowHitRatio"),
        alert("HighCPUUsage", instance="app-1:9464"),
        alert("HighHTTPLatency", route="/search"),
        alert("DiskSpaceLow", instance="app-1:9464"),
        alert("Watchdog"),
    )
    env.smtp.wait_for_subject("DiskSpaceLow", timeout=30)  # critical: never muted
    env.webhook.wait_for(lambda c: c.path == "/deadman", timeout=30)
    time.sleep(4)
    low = env.status_of("CacheLowHitRatio")
    assert low["state"] == "suppressed"
    assert set(low["mutedBy"]) == {"outside-working-hours", "maintenance"}
    for name in ("HighCPUUsage", "HighHTTPLatency"):
        status = env.status_of(name)
        assert status["state"] == "suppressed" and status["mutedBy"] == ["maintenance"], (name, status)
    assert env.status_of("DiskSpaceLow")["mutedBy"] == []
    subjects = [m.subject for m in env.smtp.received]
    assert not any(n in s for s in subjects for n in ("CacheLowHitRatio", "HighCPUUsage"))
    titles = [c.body["attachments"][0]["title"] for c in calls(env, "/slack")]
    assert not any("HighHTTPLatency" in t or "HighCPUUsage" in t for t in titles)
