"""The signal-integrity proof: one scripted scenario on the whole native stack (harness.stack) shows that
every catalogue metric reaches Prometheus with its catalogue labels, every shipped dashboard panel
returns data, and every critical alert fires under its fault, reaches the receivers Alertmanager routes
it to (the webhook sink and the SMTP sink) and resolves.

The alert rules are the shipped definitions built with tests/stack/proof-overrides.yml (the same
expressions and thresholds; shorter `for`, windows and rule intervals). HighMemoryUsage and DiskSpaceLow
fire by a lowered threshold (tests/stack/proof-low-thresholds.yml) and resolve when the shipped
threshold is loaded again: this machine's memory and disk cannot be filled safely. Alertmanager runs the
compose stack's config (demo/alertmanager/alertmanager.yml: the shipped routing, receivers at the sinks).

The tests of this module run in order on one stack. The last one prints the coverage table (metrics,
panels, alerts: expected / seen) and writes it as JSON to build/signal-integrity.json (or to
$COVET_SIGNAL_REPORT).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import tools
from harness.stack import APP_JOB, Stack, shipped_alertmanager_config
from harness.stack_sinks import Mail, WebhookCall

from covet_otel.catalogue import CATALOGUE
from covet_otel.check import run_check

# one scenario of several minutes: each step waits for alerts to fire or resolve through real windows
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HERE = Path(__file__).parent
REPO = tools.REPO_ROOT
OVERRIDES = HERE / "proof-overrides.yml"
LOW_THRESHOLDS = HERE / "proof-low-thresholds.yml"
REPORT = Path(os.environ.get("COVET_SIGNAL_REPORT", REPO / "build" / "signal-integrity.json"))
APP_JOBS = {APP_JOB, "covet-backup", "covet-migrate"}
SERVER_JOBS = {"redis", "node", "postgresql"}
# catalogue metrics the scenario cannot produce, with the reason (none today: even the replication
# lag is there, postgres_exporter's query reports 0 on a primary)
NOT_PRODUCED: dict[str, str] = {}
NOTIFY_TIMEOUT = 360.0


@dataclass
class Coverage:
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    panels: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sample_panels(self, stack: Stack, moment: str) -> None:
        """Record which panels return data now (as `covet-otel check` evaluates them)."""
        report = run_check(stack.prometheus.url, job=APP_JOB, rate_interval="1m")
        for board in report["dashboards"]:
            for panel in board["panels"]:
                key = f"{board['uid']} / {panel['title']}"
                entry = self.panels.setdefault(key, {"has_data": False, "seen_at": [], "reasons": []})
                if panel["has_data"]:
                    entry["has_data"] = True
                    entry["seen_at"].append(moment)
                else:
                    entry["reasons"] = [r["detail"] for r in panel["reasons"]]


@dataclass
class Proof:
    stack: Stack
    rules_dir: Path
    shipped_thresholds: Path
    low_thresholds: Path
    coverage: Coverage
    critical: dict[str, dict[str, Any]]


def build_rules(out: Path, *overrides: Path) -> Path:
    args = [arg for o in overrides for arg in ("--config", str(o))]
    subprocess.run(
        ["covet-otel", "mixin", "build", *args, "--out", str(out)], check=True, capture_output=True
    )
    return out / "alerts"


@pytest.fixture(scope="module")
def proof(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proof]:
    tmp = tmp_path_factory.mktemp("proof")
    low = build_rules(tmp / "low", OVERRIDES, LOW_THRESHOLDS)
    shipped = build_rules(tmp / "shipped", OVERRIDES)
    # one directory whose files are rewritten in place: Prometheus keeps an alert's state across a
    # reload only for the same file and group, which is what lets the memory and disk alerts resolve
    rules_dir = tmp / "rules"
    rules_dir.mkdir()
    for path in shipped.glob("*.rules.yml"):
        shutil.copy(path, rules_dir / path.name)
    critical = {}
    for path in sorted(rules_dir.glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule and rule["labels"]["severity"] == "critical":
                    critical[rule["alert"]] = rule
    stack = Stack(
        rule_files=sorted(rules_dir.glob("*.rules.yml")),
        alertmanager_config=shipped_alertmanager_config(),
        errors=0.001,  # below the availability SLO's budget: the burn-rate alerts fire only under their fault
        # the app's series leave the collector 30 s after it stops (shipped: 5 min), so ServiceDown
        # sees it gone within a minute
        collector_env={"COVET_COLLECTOR_METRIC_EXPIRATION": "30s"},
    )
    with stack:
        yield Proof(stack, rules_dir, shipped, low, Coverage(), critical)


# ---------------------------------------------------------------------------------------------------
# helpers: expected receivers and the notifications that reached the sinks
# ---------------------------------------------------------------------------------------------------
def expected_deliveries(stack: Stack, labels: dict[str, str]) -> dict[str, Any]:
    """Where Alertmanager's routing (amtool config routes test on the running config) sends an alert:
    the webhook paths and the e-mail addresses of those receivers."""
    proc = subprocess.run(
        [str(tools.amtool()), "config", "routes", "test", f"--config.file={stack.alertmanager.config_path}"]
        + [f"{k}={v}" for k, v in labels.items()],
        capture_output=True,
        text=True,
        check=True,
    )
    names = proc.stdout.strip().split(",")
    config = yaml.safe_load(stack.alertmanager.config_path.read_text())
    paths: set[str] = set()
    emails: set[str] = set()
    for receiver in config["receivers"]:
        if receiver["name"] not in names:
            continue
        for slack in receiver.get("slack_configs") or []:
            paths.add(re.sub(r"^https?://[^/]+", "", slack["api_url"]))
        for pagerduty in receiver.get("pagerduty_configs") or []:
            paths.add(re.sub(r"^https?://[^/]+", "", pagerduty["url"]))
        for hook in receiver.get("webhook_configs") or []:
            paths.add(re.sub(r"^https?://[^/]+", "", hook["url"]))
        for mail in receiver.get("email_configs") or []:
            emails.add(mail["to"])
    return {"receivers": names, "webhook_paths": sorted(paths), "emails": sorted(emails)}


def _title(alertname: str, status: str) -> re.Pattern[str]:
    # covet.title in alerts/templates/covet.tmpl: "[FIRING:1] Name (job)" / "[RESOLVED] Name (job)"
    return re.compile(rf"\[{status.upper()}(:\d+)?\] {re.escape(alertname)}\b")


def _webhook_delivered(calls: list[WebhookCall], since: int, alertname: str, status: str, path: str) -> bool:
    """A ``status`` notification of ``alertname`` at ``path`` among the calls from index ``since``."""
    pattern = _title(alertname, status)
    at_path = [c for c in calls[since:] if c.path == path and isinstance(c.body, dict)]
    if not any("event_action" in c.body for c in at_path):
        return any(pattern.search(json.dumps(c.body)) for c in at_path)
    # PagerDuty events API v2: a resolve event is matched to its trigger (sent before the step began)
    # by dedup_key
    triggers = {
        c.body["dedup_key"]
        for c in calls
        if c.path == path
        and isinstance(c.body, dict)
        and c.body.get("event_action") == "trigger"
        and _title(alertname, "firing").search(json.dumps(c.body))
    }
    wanted = "trigger" if status == "firing" else "resolve"
    return any(c.body.get("event_action") == wanted and c.body.get("dedup_key") in triggers for c in at_path)


def _mail_has(alertname: str, status: str, to: str) -> Callable[[Mail], bool]:
    pattern = _title(alertname, status)
    return lambda mail: to in mail.recipients and bool(pattern.search(mail.subject))


def _delivered(proof: Proof, alertname: str, status: str, since: tuple[int, int]) -> bool:
    expected = proof.coverage.alerts[alertname]["expected"]
    stack = proof.stack
    hooks = stack.webhook.received
    mails = stack.smtp.received[since[1] :]
    return all(
        _webhook_delivered(hooks, since[0], alertname, status, p) for p in expected["webhook_paths"]
    ) and all(any(_mail_has(alertname, status, to)(m) for m in mails) for to in expected["emails"])


def load_rules(proof: Proof, source: Path) -> None:
    """Rewrite the rule files in place and reload Prometheus (an alert keeps its state)."""
    for path in source.glob("*.rules.yml"):
        shutil.copy(path, proof.rules_dir / path.name)
    proof.stack.prometheus.reload()


def mark(proof: Proof) -> tuple[int, int]:
    """How many notifications the sinks hold now: a step looks only at what arrives after it."""
    return len(proof.stack.webhook.received), len(proof.stack.smtp.received)


def wait_all(
    proof: Proof, names: list[str], status: str, since: tuple[int, int], timeout: float = NOTIFY_TIMEOUT
) -> None:
    """Wait until every sink each alert is routed to got its ``status`` notification after ``since``
    (all alerts at once, one deadline); records the seconds each took."""
    started = time.monotonic()
    for name in names:
        entry = proof.coverage.alerts.setdefault(name, {})
        if "expected" not in entry:
            labels = {"alertname": name, **proof.critical[name]["labels"]}
            entry["expected"] = expected_deliveries(proof.stack, labels)
    pending = list(names)
    while pending:
        for name in list(pending):
            if _delivered(proof, name, status, since):
                proof.coverage.alerts[name][status] = round(time.monotonic() - started, 1)
                pending.remove(name)
        if not pending:
            return
        if time.monotonic() - started > timeout:
            state = {
                a["labels"]["alertname"]: a["state"]
                for a in proof.stack.prometheus.alerts()
                if a["labels"]["alertname"] in pending
            }
            seen = []
            for call in proof.stack.webhook.received[since[0] :]:
                text = json.dumps(call.body)
                titles = sorted(set(re.findall(r"\[(?:FIRING:\d+|RESOLVED)\] \w+", text)))
                action = call.body.get("event_action", "") if isinstance(call.body, dict) else ""
                seen.append(f"{call.path} {action} {titles}")
            seen += [f"mail {m.recipients} {m.subject}" for m in proof.stack.smtp.received[since[1] :]]
            raise AssertionError(
                f"no {status} notification within {timeout}s for {pending}; Prometheus alert states now: "
                f"{state}; received since the step began:\n" + "\n".join(seen[-80:])
            )
        time.sleep(1)


def wait_notified(proof: Proof, alertname: str, status: str, since: tuple[int, int]) -> None:
    wait_all(proof, [alertname], status, since)


def record_fault(proof: Proof, alertname: str, fault: str) -> None:
    proof.coverage.alerts.setdefault(alertname, {})["fault"] = fault


# ---------------------------------------------------------------------------------------------------
# the scenario
# ---------------------------------------------------------------------------------------------------
def _series(stack: Stack) -> dict[str, list[dict[str, str]]]:
    by_name: dict[str, list[dict[str, str]]] = {}
    for sample in stack.prometheus.query('{__name__=~"covet_.+"}'):
        by_name.setdefault(sample["metric"]["__name__"], []).append(sample["metric"])
    return by_name


def test_1_every_catalogue_metric_is_at_prometheus_with_its_catalogue_labels(proof: Proof) -> None:
    stack = proof.stack
    # the job processes' series live as long as the collector keeps them: run them again now
    stack.run_backup()
    stack.run_migration()
    stack.app.set_pending_migrations(0)  # type: ignore[union-attr]
    deadline = time.monotonic() + 90
    while True:
        by_name = _series(stack)
        missing = [
            d.name for d in CATALOGUE
            if d.name not in NOT_PRODUCED
            and not any(n in by_name for n in (d.name, d.name + "_count"))
        ]  # fmt: skip
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(2)
    problems = []
    for d in CATALOGUE:
        names = [d.name + s for s in ("_bucket", "_count", "_sum")] if d.kind == "histogram" else [d.name]
        found = [labels for n in names for labels in by_name.get(n, [])]
        entry: dict[str, Any] = {"source": d.source, "series": len(found)}
        proof.coverage.metrics[d.name] = entry
        if d.name in NOT_PRODUCED:
            entry["status"] = "not produced: " + NOT_PRODUCED[d.name]
            if found:
                problems.append(f"{d.name} is listed as not produced but is there")
            continue
        if not found:
            entry["status"] = "missing"
            problems.append(f"{d.name} ({d.source}) is not at Prometheus")
            continue
        entry["status"] = "seen"
        want = set(d.label_names) if d.source == "rule" else {*d.label_names, "job", "instance"}
        for labels in found:
            keys = set(labels) - {"__name__", "le"}
            if keys != want:
                problems.append(f"{d.name}: labels {sorted(keys)} instead of {sorted(want)}")
                break
            jobs = APP_JOBS if d.source == "sdk" else SERVER_JOBS
            if d.source != "rule" and labels["job"] not in jobs:
                problems.append(f"{d.name}: job {labels['job']!r} (expected one of {sorted(jobs)})")
                break
            for label in d.labels:
                if label.values and labels[label.name] not in (*label.values, "other"):
                    problems.append(f"{d.name}: {label.name}={labels[label.name]!r} is not a catalogue value")
    assert problems == [], "\n".join(problems)


def test_2_panels_have_data_on_the_healthy_stack(proof: Proof) -> None:
    # a run of every job kind just before, and every rule group evaluated on data (2 s intervals)
    proof.stack.run_backup()
    proof.coverage.sample_panels(proof.stack, "healthy")
    assert proof.coverage.panels


def test_3_app_side_faults_fire_their_critical_alerts_and_notify(proof: Proof) -> None:
    stack, app = proof.stack, proof.stack.app
    assert app is not None
    faults = {
        "DatabaseConnectionPoolLeaks": "a pool connection acquired and never released",
        "HealthCheckFailing": "the critical health check stack:switch fails",
        "BackupFailed": "a pg_dump of a database that does not exist",
        "HTTPAvailabilityBudgetBurnFast": "half of the requests answered 500",
        "HTTPLatencyBudgetBurnFast": "a third of the requests take 0.8 s",
        "CacheConnectionErrors": "Redis stopped",
        "DatabaseConnectionPoolExhausted": "every pool connection held for 90 s",
        "HighMemoryUsage": "threshold lowered to 0.1 % (the host cannot be filled safely)",
        "DiskSpaceLow": "threshold lowered to 0.1 % (the disk cannot be filled safely)",
    }
    for name, fault in faults.items():
        record_fault(proof, name, fault)
    since = mark(proof)
    app.leak()
    app.fail_health(True)
    stack.run_backup(fail=True)
    app.traffic(errors=0.5, slow=0.35)
    stack.redis.stop()
    app.exhaust_pool(seconds=90)
    load_rules(proof, proof.low_thresholds)
    wait_all(proof, list(faults), "firing", since)
    proof.coverage.sample_panels(stack, "app-side faults")


def test_4_app_side_faults_resolve_when_repaired(proof: Proof) -> None:
    stack, app = proof.stack, proof.stack.app
    assert app is not None
    since = mark(proof)
    app.fail_health(False)
    app.traffic(errors=0.001, slow=0)
    stack.redis.start()
    stack.run_backup()
    load_rules(proof, proof.shipped_thresholds)
    # the leak, the pool and the burn rates resolve when their windows (1-3 min) no longer see them
    wait_all(
        proof,
        [
            "HealthCheckFailing", "BackupFailed", "CacheConnectionErrors", "HighMemoryUsage", "DiskSpaceLow",
            "DatabaseConnectionPoolLeaks", "DatabaseConnectionPoolExhausted",
            "HTTPAvailabilityBudgetBurnFast", "HTTPLatencyBudgetBurnFast",
        ],
        "resolved",
        since,
    )  # fmt: skip


def test_5_postgresql_down(proof: Proof) -> None:
    record_fault(proof, "PostgreSQLDown", "PostgreSQL stopped (postgres_exporter reports pg_up 0)")
    since = mark(proof)
    with proof.stack.postgres.stopped():
        wait_notified(proof, "PostgreSQLDown", "firing", since)
        proof.coverage.sample_panels(proof.stack, "postgresql down")
        since = mark(proof)
    wait_notified(proof, "PostgreSQLDown", "resolved", since)


def test_6_collector_down(proof: Proof) -> None:
    record_fault(proof, "CollectorDown", "the collector stopped (its scrape fails)")
    since = mark(proof)
    with proof.stack.collector.stopped():
        wait_notified(proof, "CollectorDown", "firing", since)
        since = mark(proof)
    wait_notified(proof, "CollectorDown", "resolved", since)


def test_7_service_down(proof: Proof) -> None:
    app = proof.stack.app
    assert app is not None
    record_fault(proof, "ServiceDown", "the app stopped (its series leave the collector 30 s later)")
    since = mark(proof)
    with app.stopped():
        wait_notified(proof, "ServiceDown", "firing", since)
        since = mark(proof)
    wait_notified(proof, "ServiceDown", "resolved", since)


def test_8_coverage_table(proof: Proof) -> None:
    """Every critical alert fired, notified and resolved; every panel had data at some point; every
    catalogue metric was seen (or is listed as not produced, with the reason)."""
    proof.stack.run_backup()
    proof.stack.run_migration()
    # a job's series reach Prometheus at the next scrape after its exit (seconds on a loaded machine)
    for name in ("covet_backup_duration_seconds_count", "covet_migration_duration_seconds_count"):
        proof.stack.prometheus.wait_for(f"{name} > 0", timeout=60)
    proof.coverage.sample_panels(proof.stack, "end")
    cov = proof.coverage
    metrics_seen = sum(m["status"] == "seen" for m in cov.metrics.values())
    metrics_expected = sum(not m["status"].startswith("not produced") for m in cov.metrics.values())
    panels_seen = sum(p["has_data"] for p in cov.panels.values())
    alerts_ok = [
        # seconds to each notification; 0.0 is a time too
        n
        for n in proof.critical
        if {"firing", "resolved"} <= cov.alerts.get(n, {}).keys()
    ]
    table = {
        "metrics": {"expected": metrics_expected, "seen": metrics_seen, "not_produced": NOT_PRODUCED},
        "panels": {"expected": len(cov.panels), "seen": panels_seen},
        "critical_alerts": {"expected": len(proof.critical), "fired_notified_resolved": len(alerts_ok)},
        "detail": {"metrics": cov.metrics, "panels": cov.panels, "alerts": cov.alerts},
        "startup_seconds": proof.stack.timings,
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(table, indent=2, sort_keys=True), encoding="utf-8")
    print(f"\n{'':<16}{'expected':>10}{'seen':>8}")
    print(f"{'metrics':<16}{metrics_expected:>10}{metrics_seen:>8}   (+{len(NOT_PRODUCED)} not produced)")
    print(f"{'panels':<16}{len(cov.panels):>10}{panels_seen:>8}")
    print(
        f"{'critical alerts':<16}{len(proof.critical):>10}{len(alerts_ok):>8}   (fired, notified, resolved)"
    )
    print(f"report: {REPORT}")
    blind = {k: v["reasons"] for k, v in cov.panels.items() if not v["has_data"]}
    assert blind == {}
    assert metrics_seen == metrics_expected
    assert sorted(alerts_ok) == sorted(proof.critical)
