"""End to end on the real pipeline: the stack's app, jobs, PostgreSQL (through postgres_exporter),
Redis and the collector → Prometheus running the rules of the fast test profile → Alertmanager
running the generated config → sinks. Each critical alert is caused by its real fault, reaches its
receivers with runbook and dashboard links that open, and resolves when the fault ends.

The rules are the shipped definition with tests/alerts/profile-fast.yaml applied (short `for`,
windows and lookbacks), plus the link targets; the Alertmanager config is the generated one with
its receivers pointed at local sinks. Both are built by the mixin itself, like a user's override."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROUTING_KEYS, sink_overrides
from harness.stack import APP_JOB, APP_POOL, Stack
from harness.stack_sinks import Mail, WebhookSink
from link_server import LinkServer

from covet_otel.mixin import alertmanager, alerts
from covet_otel.mixin.config import MixinConfig, apply_overrides, load_config

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
PROFILE = HERE / "profile-fast.yaml"
TIMEOUT = 120.0  # a fault to a delivered notification, on a loaded 2-core machine
# series of a process that stopped pushing leave the collector after this (default 5m)
METRIC_EXPIRATION = "20s"
# What may fire on the healthy stack besides the Watchdog, each because it is true there (checked in
# test_healthy_stack_fires_only_the_watchdog): the demo app caches items for 3 s, so few cache reads
# find their key; the 2-core test machine is often busy above 90 % CPU with builds and other tests.
HEALTHY_FIRING = {"Watchdog", "CacheLowHitRatio", "HighCPUUsage"}


@dataclass
class E2E:
    stack: Stack
    hooks: WebhookSink
    links: LinkServer
    config: MixinConfig
    rules_dir: Path

    def write_rules(self, config: MixinConfig) -> None:
        alerts.write(config, self.rules_dir)

    def reload_rules(self, overrides: dict[str, Any] | None = None) -> None:
        """Rewrite the rule files (the fast profile, plus `overrides`) and reload Prometheus."""
        self.write_rules(apply_overrides(self.config, overrides or {}))
        self.stack.prometheus.reload()

    # notifications that arrived before the current test began are not its own
    mails_before: int = 0
    hooks_before: int = 0

    began: float = 0.0

    def begin(self) -> None:
        self.mails_before = len(self.stack.smtp.received)
        self.hooks_before = len(self.hooks.received)
        self.began = time.monotonic()

    def wait_mail(self, alertname: str, status: str = "FIRING", timeout: float = TIMEOUT) -> Mail:
        pattern = re.compile(rf"^\[{status}(:\d+)?\] {alertname} \(")
        deadline = time.monotonic() + timeout
        while True:
            for mail in self.stack.smtp.received[self.mails_before :]:
                if pattern.match(mail.subject):
                    # seconds from the start of the test (the fault) to the e-mail: shown with -s
                    print(f"{alertname} {status}: e-mail after {time.monotonic() - self.began:.1f} s")
                    return mail
            if time.monotonic() > deadline:
                seen = [m.subject for m in self.stack.smtp.received[self.mails_before :]]
                raise TimeoutError(f"no {status} mail for {alertname} in {timeout}s; got {seen}")
            time.sleep(0.25)

    def wait_page(self, alertname: str, action: str = "trigger", timeout: float = TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for call in self.hooks.received[self.hooks_before :]:
                if (
                    call.path == "/pagerduty"
                    and call.body.get("event_action") == action
                    and f"] {alertname} (" in call.body["payload"]["summary"]
                ):
                    return call.body
            if time.monotonic() > deadline:
                raise TimeoutError(f"no PagerDuty {action} for {alertname} in {timeout}s")
            time.sleep(0.25)

    def settle(self, timeout: float = TIMEOUT) -> None:
        """Wait until no critical or high alert is active but those of a healthy stack (the previous
        fault has resolved; medium and low ones may outlast it, e.g. the app's own error-rate health
        check reports warn for minutes after a burst of 503s)."""
        deadline = time.monotonic() + timeout
        while True:
            active = {
                a["labels"]["alertname"]
                for a in self.stack.prometheus.alerts()
                if a["labels"]["alertname"] not in HEALTHY_FIRING
                and a["labels"].get("severity") in ("critical", "high")
            }
            if not active:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stack did not settle: still active {active}")
            time.sleep(1)

    def firing(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.stack.prometheus.alerts() if a["state"] == "firing"}


def links_of(text: str) -> tuple[str, str]:
    runbook = re.search(r"Runbook: (\S+)", text)
    dashboard = re.search(r"Dashboard: (\S+)", text)
    assert runbook and dashboard, text
    return runbook.group(1), dashboard.group(1)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    tmp = tmp_path_factory.mktemp("e2e")
    links = LinkServer().start()
    hooks = WebhookSink().start()
    config = apply_overrides(
        load_config(PROFILE),
        {"runbook_base_url": f"{links.url}/runbooks/", "grafana_url": links.url},
    )
    rules_dir = tmp / "rules"
    alerts.write(config, rules_dir)
    secrets = tmp / "secrets"
    secrets.mkdir()
    for service, key in ROUTING_KEYS.items():
        (secrets / f"pagerduty-{service}-routing-key").write_text(key)
    # e-mail goes to the stack's SMTP sink (its compose address, which the stack rewrites)
    am_overrides = sink_overrides(hooks.url, "mailpit:1025", secrets)
    am_dir = tmp / "alertmanager"
    alertmanager.write(apply_overrides(config, am_overrides), am_dir)
    stack = Stack(
        rule_files=sorted(rules_dir.glob("*.rules.yml")),
        alertmanager_config=am_dir / "alertmanager.yml",
        errors=0.0,  # no 5xx until a test asks for them
        collector_env={"COVET_COLLECTOR_METRIC_EXPIRATION": METRIC_EXPIRATION},
    )
    try:
        with stack:
            yield E2E(stack, hooks, links, config, rules_dir)
    finally:
        hooks.stop()
        links.stop()


@pytest.fixture(autouse=True)
def own_notifications(request: pytest.FixtureRequest) -> None:
    """Each fault test starts on a settled stack and sees only the notifications sent after."""
    if "e2e" in request.fixturenames:
        e2e: E2E = request.getfixturevalue("e2e")
        if request.node.name != "test_healthy_stack_fires_only_the_watchdog":
            e2e.settle()
        e2e.begin()


def check_delivery(e2e: E2E, alertname: str, mail: Mail, recipients: list[str]) -> None:
    """The notification names the alert, states its value, and its links open."""
    assert mail.recipients == recipients, (alertname, mail.recipients)
    runbook, dashboard = links_of(mail.text)
    rule = e2e.config.alert(alertname)
    assert runbook == e2e.config.runbook_url(rule)
    assert dashboard.startswith(f"{e2e.links.url}/d/{rule.dashboard_uid}?var-job=")
    with httpx.Client(timeout=10, trust_env=False) as client:
        assert client.get(runbook).status_code == 200, runbook
        assert client.get(dashboard).status_code == 200, dashboard
    assert f'href="{runbook}"' in mail.text  # the HTML part links it too


def fires_and_resolves_critical(e2e: E2E, alertname: str, recipients: list[str] | None = None) -> Mail:
    mail = e2e.wait_mail(alertname)
    check_delivery(e2e, alertname, mail, recipients or ["oncall@example.com"])
    page = e2e.wait_page(alertname)
    assert page["routing_key"] == ROUTING_KEYS["critical"]
    return mail


# ── healthy ─────────────────────────────────────────────────────────────────────────────────────


def test_healthy_stack_fires_only_the_watchdog(e2e: E2E) -> None:
    # every rule has been evaluated for a while on a healthy stack
    time.sleep(20)
    prom = e2e.stack.prometheus
    active = {a["labels"]["alertname"] for a in prom.alerts()}
    assert "Watchdog" in e2e.firing()
    assert active <= HEALTHY_FIRING, active - HEALTHY_FIRING
    if "CacheLowHitRatio" in active:
        ratio = float(prom.query(f'covet_cache_hit_ratio{{job="{APP_JOB}"}}')[0]["value"][1])
        assert ratio < e2e.config.alert("CacheLowHitRatio").threshold().value
    if "HighCPUUsage" in active:
        busiest = prom.query(f'max(max_over_time(covet_system_cpu_usage_percent{{job="{APP_JOB}"}}[1m]))')
        assert float(busiest[0]["value"][1]) > e2e.config.alert("HighCPUUsage").threshold().value
    watchdog = e2e.hooks.wait_for(lambda c: c.path == "/deadman", timeout=TIMEOUT)
    assert watchdog.has_alert("Watchdog", "firing")


# ── critical alerts under their real faults ─────────────────────────────────────────────────────


def test_postgresql_down(e2e: E2E) -> None:
    with e2e.stack.postgres.stopped():
        mail = e2e.wait_mail("PostgreSQLDown")
        check_delivery(e2e, "PostgreSQLDown", mail, ["dba@example.com"])
        assert "postgres_exporter cannot connect to it" in mail.text
        assert e2e.wait_page("PostgreSQLDown")["routing_key"] == ROUTING_KEYS["critical"]
    e2e.wait_mail("PostgreSQLDown", "RESOLVED")
    e2e.wait_page("PostgreSQLDown", "resolve")


def test_connection_pool_exhausted(e2e: E2E) -> None:
    e2e.stack.app.exhaust_pool(seconds=45)
    mail = fires_and_resolves_critical(e2e, "DatabaseConnectionPoolExhausted")
    assert f"Pool {APP_POOL} has 100% of its connections in use" in mail.text
    e2e.wait_mail("DatabaseConnectionPoolExhausted", "RESOLVED", timeout=TIMEOUT + 45)


def test_connection_leak(e2e: E2E) -> None:
    e2e.stack.app.leak("not_released")
    mail = fires_and_resolves_critical(e2e, "DatabaseConnectionPoolLeaks")
    assert "connections of pool" in mail.text
    # the leak is one event: the alert resolves once it is older than the window
    e2e.wait_mail("DatabaseConnectionPoolLeaks", "RESOLVED")


def test_health_check_failing(e2e: E2E) -> None:
    e2e.stack.app.fail_health(True)
    try:
        mail = fires_and_resolves_critical(e2e, "HealthCheckFailing")
        assert "Health check stack:switch reports fail (status 0)." in mail.text
    finally:
        e2e.stack.app.fail_health(False)
    e2e.wait_mail("HealthCheckFailing", "RESOLVED")


def test_redis_broken(e2e: E2E) -> None:
    with e2e.stack.redis.stopped():
        mail = fires_and_resolves_critical(e2e, "CacheConnectionErrors")
        assert "of Redis calls failed to connect or timed out" in mail.text
    e2e.wait_mail("CacheConnectionErrors", "RESOLVED")


def test_backup_failed(e2e: E2E) -> None:
    e2e.stack.run_backup(fail=True)
    mail = fires_and_resolves_critical(e2e, "BackupFailed")
    assert "Backup nightly failed at" in mail.text
    e2e.stack.run_backup()  # the rerun succeeds
    e2e.wait_mail("BackupFailed", "RESOLVED")


def test_disk_and_memory_with_threshold_overrides(e2e: E2E) -> None:
    # a threshold the machine is above (any used disk and memory), then the shipped ones again
    e2e.reload_rules(
        {
            "alerts": {
                "DiskSpaceLow": {"thresholds": {"used_percent": 0.001}},
                "HighMemoryUsage": {"thresholds": {"used_percent": 0.001}},
            }
        }
    )
    try:
        disk = fires_and_resolves_critical(e2e, "DiskSpaceLow")
        assert "Filesystem / on " in disk.text and "(threshold 0.001 %)" in disk.text
        memory = fires_and_resolves_critical(e2e, "HighMemoryUsage")
        assert "(threshold 0.001 %)" in memory.text
    finally:
        e2e.reload_rules()
    e2e.wait_mail("DiskSpaceLow", "RESOLVED")
    e2e.wait_mail("HighMemoryUsage", "RESOLVED")


def test_http_errors_and_fast_burn(e2e: E2E) -> None:
    e2e.stack.app.traffic(errors=0.5)
    try:
        burn = fires_and_resolves_critical(e2e, "HTTPAvailabilityBudgetBurnFast")
        assert "the 99.9 % availability SLO (10m) error budget burns too fast" in burn.text
        errors = e2e.wait_mail("HighHTTPErrorRate")
        check_delivery(e2e, "HighHTTPErrorRate", errors, ["team@example.com"])
        assert "answered 5xx over 30s (threshold 5 %)" in errors.text
    finally:
        e2e.stack.app.traffic(errors=0.0)
    e2e.wait_mail("HTTPAvailabilityBudgetBurnFast", "RESOLVED")
    e2e.wait_mail("HighHTTPErrorRate", "RESOLVED")


def test_authentication_failure_spike(e2e: E2E) -> None:
    """A credential-stuffing burst against the app's login."""
    deadline = time.monotonic() + TIMEOUT
    pattern = re.compile(r"^\[FIRING(:\d+)?\] AuthenticationFailureSpike \(")
    with httpx.Client(base_url=e2e.stack.app.url, timeout=5, trust_env=False) as client:
        while not any(pattern.match(m.subject) for m in e2e.stack.smtp.received):
            assert time.monotonic() < deadline, "AuthenticationFailureSpike did not arrive"
            for _ in range(20):
                response = client.post("/login", headers={"authorization": "Bearer stolen"})
                assert response.status_code == 401
            time.sleep(0.2)
    mail = e2e.wait_mail("AuthenticationFailureSpike")
    check_delivery(e2e, "AuthenticationFailureSpike", mail, ["security@example.com"])
    assert "(threshold 3/s)" in mail.text
    slack = e2e.hooks.wait_for(
        lambda c: c.path == "/slack" and "AuthenticationFailureSpike" in c.body["attachments"][0]["title"], 30
    )
    assert slack.body["channel"] == "#security"
    e2e.wait_mail("AuthenticationFailureSpike", "RESOLVED")


def test_service_down(e2e: E2E) -> None:
    e2e.stack.app.stop()
    try:
        # the collector keeps exporting the stopped app's series for METRIC_EXPIRATION first
        mail = fires_and_resolves_critical(e2e, "ServiceDown")
        assert f"No process of job {APP_JOB} reports metrics any more" in mail.text
    finally:
        e2e.stack.app.start()
    e2e.wait_mail("ServiceDown", "RESOLVED")


def test_collector_down(e2e: E2E) -> None:
    with e2e.stack.collector.stopped():
        mail = fires_and_resolves_critical(e2e, "CollectorDown")
        assert "Prometheus cannot scrape the collector at" in mail.text
        # every pushed series is gone now, yet ServiceDown does not fire for the apps behind the
        # collector (nor even go pending): CollectorDown says what is wrong
        time.sleep(5)  # evaluations every second, ServiceDown's `for` is 2 s here
        assert not e2e.stack.prometheus.query(f'covet_process_cpu_seconds_total{{job="{APP_JOB}"}}')
        assert [a for a in e2e.stack.prometheus.alerts() if a["labels"]["alertname"] == "ServiceDown"] == []
    e2e.wait_mail("CollectorDown", "RESOLVED")
    # nor once it is back, until the app's next export brings the series back
    e2e.stack.prometheus.wait_for(f'covet_process_cpu_seconds_total{{job="{APP_JOB}"}}', timeout=TIMEOUT)
    time.sleep(5)
    assert not [m.subject for m in e2e.stack.smtp.received[e2e.mails_before :] if "ServiceDown" in m.subject]
