"""The whole-stack harness itself (harness.stack): it starts every real component, data flows from the
app through the collector to Prometheus, each fault it offers shows where a user would see it, alerts
reach the sinks through the rewritten compose addresses, and it stops cleanly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import port_open
from harness.stack import APP_JOB, APP_POOL, BACKUP_NAME, MIGRATOR, Stack, rewrite_addresses

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Stack]:
    """A stack of this module's own (faults are injected into it), with the test rules and routing."""
    stack = Stack(rule_files=[HERE / "stack-test.rules.yml"], alertmanager_config=HERE / "alertmanager.yml")
    with stack:
        print(f"\nstack start-up: {stack.timings}")
        yield stack


def value(stack: Stack, promql: str) -> float:
    result = stack.prometheus.query(promql)
    assert len(result) == 1, (promql, result)
    return float(result[0]["value"][1])


def wait_value(stack: Stack, promql: str, predicate, timeout: float = 60.0) -> float:
    result = stack.prometheus.wait_for(
        promql, lambda r: len(r) == 1 and predicate(float(r[0]["value"][1])), timeout=timeout
    )
    return float(result[0]["value"][1])


def test_rewrite_addresses_replaces_whole_compose_addresses_only() -> None:
    mapping = {"otelcol:8889": "127.0.0.1:1", "webhook:8080": "127.0.0.1:2"}
    config = {
        "targets": ["otelcol:8889", "otelcol:88890", "my-otelcol:8889", "otelcol:8888"],
        "url": "http://webhook:8080/alerts",
        "n": 3,
    }
    assert rewrite_addresses(config, mapping) == {
        "targets": ["127.0.0.1:1", "otelcol:88890", "my-otelcol:8889", "otelcol:8888"],
        "url": "http://127.0.0.1:2/alerts",
        "n": 3,
    }


def test_every_scrape_target_is_up_and_the_collector_keeps_job_and_instance(own_stack: Stack) -> None:
    targets = {t["labels"]["job"]: t for t in own_stack.prometheus.targets()}
    assert set(targets) == {"otelcol", "otelcol-self", "prometheus", "alertmanager"}
    for job, target in targets.items():
        assert target["health"] == "up", (job, target.get("lastError"))
    assert targets["otelcol"]["scrapeUrl"] == f"http://{own_stack.collector.address}/metrics"
    # honor_labels: the series keep the job/instance that the collector derives from the resource
    jobs = {s["metric"]["job"] for s in own_stack.prometheus.query('count by (job) ({__name__=~"covet_.+"})')}
    assert {APP_JOB, "redis", "node", "postgresql", "covet-backup", "covet-migrate"} <= jobs
    assert not own_stack.prometheus.query('{__name__=~"covet_.+", exported_job!=""}')


def test_the_app_exercises_http_database_cache_health_security_and_business(own_stack: Stack) -> None:
    prom = own_stack.prometheus
    statuses = {
        s["metric"]["status_code"][0]
        for s in prom.query(f'covet_http_requests_total{{job="{APP_JOB}"}}')
        if float(s["value"][1]) > 0
    }
    assert statuses >= {"2", "4", "5"}
    routes = {s["metric"]["route"] for s in prom.query(f'covet_http_requests_total{{job="{APP_JOB}"}}')}
    assert "/items/{item_id}" in routes  # the template, never a raw path
    assert not any(r.startswith("/items/") and r != "/items/{item_id}" for r in routes)
    operations = {
        s["metric"]["operation"]
        for s in prom.query(f'covet_db_query_duration_seconds_count{{pool="{APP_POOL}"}}')
    }
    assert {"SELECT", "INSERT", "UPDATE", "BEGIN", "COMMIT"} <= operations
    prom.wait_for(f'covet_db_query_errors_total{{pool="{APP_POOL}", sqlstate_class="42"}} > 0')
    prom.wait_for(f'covet_db_slow_queries_total{{pool="{APP_POOL}"}} > 0')
    prom.wait_for(f'covet_cache_hits_total{{job="{APP_JOB}"}} > 0')
    prom.wait_for(f'covet_cache_misses_total{{job="{APP_JOB}"}} > 0')
    prom.wait_for(f'covet_cache_errors_total{{job="{APP_JOB}"}} > 0')
    prom.wait_for(f'covet_cache_pipeline_commands_total{{job="{APP_JOB}"}} > 0')
    prom.wait_for(f'covet_health_check_status{{job="{APP_JOB}", check="database:responseTime"}} == 1')
    prom.wait_for(f'covet_app_auth_failures_total{{job="{APP_JOB}"}} > 0')
    prom.wait_for(f'covet_security_invalid_tokens_total{{job="{APP_JOB}", token_type="jwt"}} > 0')
    prom.wait_for(f'covet_business_value_total{{job="{APP_JOB}", event="order_placed", currency="EUR"}} > 0')
    assert value(own_stack, f'covet_db_pool_max_size{{pool="{APP_POOL}"}}') == 5


def test_backup_and_migration_jobs_report_success_and_failure(own_stack: Stack) -> None:
    prom = own_stack.prometheus
    size = value(own_stack, f'covet_backup_size_bytes{{backup="{BACKUP_NAME}"}}')
    assert size > 0  # a real pg_dump archive
    own_stack.run_backup(fail=True)
    own_stack.run_migration(fail=True)
    prom.wait_for(f'covet_backup_runs_total{{backup="{BACKUP_NAME}", outcome="failure"}} == 1')
    prom.wait_for(f'covet_migration_runs_total{{migrator="{MIGRATOR}", outcome="failure"}} == 1')
    assert value(own_stack, f'covet_backup_runs_total{{backup="{BACKUP_NAME}", outcome="success"}}') == 1


def test_pool_faults_leak_and_exhaustion(own_stack: Stack) -> None:
    app = own_stack.app
    assert app is not None
    pool = f'pool="{APP_POOL}"'
    app.leak()
    app.leak("held_too_long", seconds=5)
    wait_value(
        own_stack, f'covet_db_connections_leaked_total{{{pool}, reason="not_released"}}', lambda v: v == 1
    )
    wait_value(
        own_stack, f'covet_db_connections_leaked_total{{{pool}, reason="held_too_long"}}', lambda v: v == 1
    )
    assert app.exhaust_pool(seconds=8) >= 1
    wait_value(own_stack, f"covet_db_pool_acquire_timeouts_total{{{pool}}}", lambda v: v > 0)
    wait_value(own_stack, f"covet_db_pool_health_status{{{pool}}}", lambda v: v == 0.5)


def test_failing_health_check_fires_an_alert_that_reaches_the_webhook_and_resolves(own_stack: Stack) -> None:
    app = own_stack.app
    assert app is not None
    app.fail_health(True)
    try:
        call = own_stack.webhook.wait_for_alert("StackTestHealthCheckFailing", timeout=60)
        assert call.path == "/alerts"
        alert = next(a for a in call.alerts if a["labels"]["alertname"] == "StackTestHealthCheckFailing")
        assert alert["labels"]["job"] == APP_JOB
    finally:
        app.fail_health(False)
    own_stack.webhook.wait_for_alert("StackTestHealthCheckFailing", status="resolved", timeout=60)


def test_postgres_down_is_seen_alerted_by_email_and_webhook_and_recovers(own_stack: Stack) -> None:
    with own_stack.postgres.stopped():
        wait_value(own_stack, "covet_postgresql_up", lambda v: v == 0)
        mail = own_stack.smtp.wait_for_subject("StackTestPostgresDown", timeout=60)
        assert mail.recipients == ["dba@covet.example"]
        assert own_stack.postgres.address in mail.text
        own_stack.webhook.wait_for_alert("StackTestPostgresDown", timeout=30)
        # the app answers 503 instead of hanging, and keeps exporting
        wait_value(
            own_stack, f'sum(increase(covet_http_requests_total{{job="{APP_JOB}", status_code="503"}}[10s]))',
            lambda v: v > 0,
        )  # fmt: skip
    wait_value(own_stack, "covet_postgresql_up", lambda v: v == 1)
    own_stack.webhook.wait_for_alert("StackTestPostgresDown", status="resolved", timeout=60)


def test_a_stopped_collector_makes_the_target_down_and_data_resumes(own_stack: Stack) -> None:
    prom = own_stack.prometheus
    with own_stack.collector.stopped():
        wait_value(own_stack, 'up{job="otelcol"}', lambda v: v == 0)
        assert own_stack.app is not None and own_stack.app.running
    wait_value(own_stack, 'up{job="otelcol"}', lambda v: v == 1)
    # the restarted collector has no series until the app's next pushes pass its batch processor
    total = f'sum(covet_http_requests_total{{job="{APP_JOB}"}})'
    before = wait_value(own_stack, total, lambda v: v > 0, timeout=30)
    prom.wait_for(f'sum(covet_http_requests_total{{job="{APP_JOB}"}}) > {before}', timeout=30)


def test_stop_leaves_no_process_and_no_directory() -> None:
    stack = Stack(app=False, jobs=False)
    started = time.monotonic()
    stack.start(wait_for_data=False)
    print(f"\nstack without app, processes ready after {time.monotonic() - started:.1f}s")
    servers = stack.servers()
    addresses = [(s.host, s.port) for s in servers]
    workdirs = [s.workdir for s in servers] + [stack.workdir]
    stack.stop()
    assert not [a for a in addresses if port_open(*a)]
    assert not [w for w in workdirs if w.exists()]
