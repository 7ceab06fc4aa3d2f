"""Prometheus rule files generated from the MixinConfig: `alerts/covet-<group>.rules.yml` (the
compose stack mounts alerts/ and loads `*.rules.yml`).

Every expression is built here from the definition's thresholds, windows and selectors; nothing
numeric is written in this module except the fixed 5-minute window of the two hit-ratio recording
rules (their catalogue entries define them as 5-minute ratios).

Conventions every expression follows (docs/alerts.md, "How the rules are written"):
- aggregate `by` the alert's locating labels (AlertDef.by), never by a per-process label the
  on-call cannot act on;
- counters only through rate()/increase() (counter resets), ratios with a `> 0` guard on the
  denominator (never a 0/0), and an `or 0 * ...` branch where a numerator series may not exist yet;
- series of short-lived jobs (backups, migrations) through last_over_time()/subqueries;
- absent-data alerts carry `cause="series_absent"` so that CollectorDown can inhibit them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .config import AlertDef, MixinConfig

ABSENT_CAUSE = "series_absent"
HIT_RATIO_WINDOW = "5m"
STATUS_5XX = 'status_code=~"5.."'
CONNECTION_ERRORS = 'error_type=~"connection|timeout"'
FAILED = 'outcome="failure"'
NOT_OTHER = 'event!="other"'


def _num(value: float) -> str:
    """A number as PromQL reads it (integers without a decimal point or exponent)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _sel(*matchers: str) -> str:
    parts = [m for m in matchers if m]
    return "{" + ", ".join(parts) + "}" if parts else ""


def _by(labels: tuple[str, ...]) -> str:
    return ", ".join(labels)


def _le_matcher(boundary: float) -> str:
    """Bucket matcher for a boundary: Prometheus 3 stores integer boundaries as "1.0", older
    versions and other stores as "1"."""
    if float(boundary).is_integer():
        return f'le=~"{int(boundary)}|{int(boundary)}.0"'
    return f'le="{boundary!r}"'


def _with_cause(expr: str, cause: str) -> str:
    return f'label_replace({expr}, "cause", "{cause}", "", "")'


def _locate(alert: AlertDef) -> str:
    """Where, for the summary: "job shop, pool main" (a label the alert lacks is left out)."""
    first, *rest = alert.by
    return f"{first} {{{{ $labels.{first} }}}}" + "".join(
        f"{{{{ with $labels.{label} }}}}, {label} {{{{ . }}}}{{{{ end }}}}" for label in rest
    )


# ── expressions ─────────────────────────────────────────────────────────────────────────────────
# Each builder returns (expression, description template). The description states the value,
# humanized, and the threshold it crossed.

Builder = Callable[[MixinConfig, AlertDef], tuple[str, str]]


def _pool_exhausted(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    app, by, w = c.selectors.app, _by(a.by), a.window
    expr = (
        f"(sum by ({by}) (covet_db_connections_active{_sel(app)})"
        f" / (sum by ({by}) (covet_db_pool_max_size{_sel(app)}) > 0))"
        f" >= {_num(a.threshold('utilization').value)}"
        f" and on ({by}) ("
        f"sum by ({by}) (rate(covet_db_pool_acquire_timeouts_total{_sel(app)}[{w}])) > 0"
        f" or histogram_quantile(0.95, sum by ({by}, le) "
        f"(rate(covet_db_pool_acquire_duration_seconds_bucket{_sel(app)}[{w}])))"
        f" > {_num(a.threshold('acquire_wait_p95_seconds').value)})"
    )
    desc = (
        "Pool {{ $labels.pool }} has {{ $value | humanizePercentage }} of its connections in use "
        f"(threshold {a.threshold('utilization').text}) and acquires time out or wait longer than "
        f"{a.threshold('acquire_wait_p95_seconds').text} (p95) over {w}."
    )
    return expr, desc


def _pool_leaks(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    app, by, w = c.selectors.app, _by(a.by), a.window
    m = f"covet_db_connections_leaked_total{_sel(app)}"
    t = _num(a.threshold().value)
    # increase() cannot see the first leak of a series that appears with it: the second branch
    # catches series that did not exist one window ago and are already above 0
    expr = f"sum by ({by}) (increase({m}[{w}])) > {t} or sum by ({by}) ({m} unless {m} offset {w}) > {t}"
    desc = f"{{{{ $value | humanize }}}} connections of pool {{{{ $labels.pool }}}} leaked in the last {w}."
    return expr, desc


def _query_latency(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    app, by, w = c.selectors.app, _by(a.by), a.window
    expr = (
        f"histogram_quantile(0.95, sum by ({by}, le) "
        f"(rate(covet_db_query_duration_seconds_bucket{_sel(app)}[{w}]))) > {_num(a.threshold().value)}"
    )
    desc = (
        "p95 query duration of pool {{ $labels.pool }} is {{ $value | humanizeDuration }} "
        f"over {w} (threshold {a.threshold().text})."
    )
    return expr, desc


def _query_errors(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    app, by, w = c.selectors.app, _by(a.by), a.window
    expr = (
        f"sum by ({by}) (rate(covet_db_query_errors_total{_sel(app)}[{w}]))"
        f" / (sum by ({by}) (rate(covet_db_query_duration_seconds_count{_sel(app)}[{w}])) > 0)"
        f" > {_num(a.threshold().value)}"
    )
    desc = (
        "{{ $value | humanizePercentage }} of the queries of pool {{ $labels.pool }} failed "
        f"over {w} (threshold {a.threshold().text})."
    )
    return expr, desc


def _lost(metric: str, by: str, lookback: str) -> str:
    """Series that existed within the lookback and have none now (a vanished target or process)."""
    return (
        f"group by ({by}) (max_over_time({metric}[{lookback}])) unless on ({by}) group by ({by}) ({metric})"
    )


def _postgresql_down(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    m, by = f"covet_postgresql_up{_sel(c.selectors.postgresql)}", _by(a.by)
    lookback = a.threshold("lookback").duration
    expr = (
        _with_cause(f"max by ({by}) ({m}) == 0", "exporter_reports_down")
        + " or "
        + _with_cause(_lost(m, by, lookback), ABSENT_CAUSE)
    )
    desc = (
        "PostgreSQL {{ $labels.instance }} is unreachable: "
        '{{ if eq $labels.cause "exporter_reports_down" }}postgres_exporter cannot connect to it'
        "{{ else }}its metrics stopped arriving{{ end }}."
    )
    return expr, desc


def _pg_connections(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    pg, by = c.selectors.postgresql, _by(a.by)
    expr = (
        f"sum by ({by}) (covet_postgresql_backends{_sel(pg)})"
        f" / on ({by}) (max by ({by}) (covet_postgresql_connections_max{_sel(pg)}) > 0)"
        f" > {_num(a.threshold().value)}"
    )
    desc = (
        "{{ $value | humanizePercentage }} of max_connections are in use on {{ $labels.instance }} "
        f"(threshold {a.threshold().text})."
    )
    return expr, desc


def _pg_gauge(metric: str, phrase: str, humanize: str) -> Builder:
    def build(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
        by = _by(a.by)
        expr = f"max by ({by}) ({metric}{_sel(c.selectors.postgresql)}) > {_num(a.threshold().value)}"
        return expr, f"{phrase} {{{{ $value | {humanize} }}}} (threshold {a.threshold().text})."

    return build


def _pg_deadlocks(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    by, w = _by(a.by), a.window
    expr = (
        f"sum by ({by}) (increase(covet_postgresql_deadlocks_total{_sel(c.selectors.postgresql)}[{w}]))"
        f" > {_num(a.threshold().value)}"
    )
    desc = f"{{{{ $value | humanize }}}} deadlocks in database {{{{ $labels.database }}}} in the last {w}."
    return expr, desc


def _pg_cache_hit(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    expr = f"covet_postgresql_cache_hit_ratio{_sel(c.selectors.postgresql)} < {_num(a.threshold().value)}"
    desc = (
        "{{ $value | humanizePercentage }} of block reads of database {{ $labels.database }} hit "
        f"shared buffers (threshold {a.threshold().text})."
    )
    return expr, desc


def _used_percent(used: str, total: str, what: str) -> Builder:
    def build(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
        app, by = c.selectors.app, _by(a.by)
        expr = (
            f"max by ({by}) ({used}{_sel(app)}) / (max by ({by}) ({total}{_sel(app)}) > 0) * 100"
            f" > {_num(a.threshold().value)}"
        )
        desc = f'{what} is {{{{ $value | printf "%.1f" }}}} % used (threshold {a.threshold().text}).'
        return expr, desc

    return build


def _cpu(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    by = _by(a.by)
    expr = (
        f"max by ({by}) (covet_system_cpu_usage_percent{_sel(c.selectors.app)}) > {_num(a.threshold().value)}"
    )
    desc = f'CPU is {{{{ $value | printf "%.1f" }}}} % busy (threshold {a.threshold().text}).'
    return expr, desc


def _service_down(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    app, live = c.selectors.app, f"{c.liveness_metric}{_sel(c.selectors.app)}"
    lookback = a.threshold("lookback").duration
    up = f"up{_sel(app)}"
    scrape_failed = (
        f"max by (job, instance) ({up}) == 0"
        f" and on (job, instance) group by (job, instance) (max_over_time({live}[{lookback}]))"
    )
    # pushed metrics: every process of a job gone (instances are per process and churn on
    # restart, so only the job as a whole is tracked); a failed scrape is reported above instead.
    # Not while the collector is or just was down: every pushed series vanishes with it, and would
    # page ServiceDown for every job on top of CollectorDown (also after it is back, until the
    # apps' next export)
    grace = a.threshold("collector_grace").duration
    collector_was_down = f"min(min_over_time(up{_sel(c.selectors.collector)}[{grace}])) == 0"
    vanished = (
        f"({_lost(live, 'job', lookback)}) unless on (job) (min by (job) ({up}) == 0)"
        f" unless on () ({collector_was_down})"
    )
    expr = _with_cause(scrape_failed, "scrape_failed") + " or " + _with_cause(vanished, ABSENT_CAUSE)
    desc = (
        "{{ if $labels.instance }}Prometheus cannot scrape {{ $labels.instance }} of job {{ $labels.job }}"
        "{{ else }}No process of job {{ $labels.job }} reports metrics any more (one did within "
        f"the last {lookback}){{{{ end }}}}."
    )
    return expr, desc


def _http_error_rate(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    app, by, w = c.selectors.app, _by(a.by), a.window
    total = f"sum by ({by}) (rate(covet_http_requests_total{_sel(app)}[{w}]))"
    errors = f"sum by ({by}) (rate(covet_http_requests_total{_sel(app, STATUS_5XX)}[{w}]))"
    expr = (
        f"{errors} / {total} > {_num(a.threshold('error_ratio').value)}"
        f" and on ({by}) {total} > {_num(a.threshold('min_request_rate').value)}"
    )
    desc = (
        "{{ $value | humanizePercentage }} of requests to {{ $labels.route }} answered 5xx over "
        f"{w} (threshold {a.threshold('error_ratio').text})."
    )
    return expr, desc


def _http_latency(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    app, by, w = c.selectors.app, _by(a.by), a.window
    expr = (
        f"histogram_quantile(0.95, sum by ({by}, le) "
        f"(rate(covet_http_request_duration_seconds_bucket{_sel(app)}[{w}])))"
        f" > {_num(a.threshold('p95_seconds').value)}"
        f" and on ({by}) sum by ({by}) (rate(covet_http_request_duration_seconds_count{_sel(app)}[{w}]))"
        f" > {_num(a.threshold('min_request_rate').value)}"
    )
    desc = (
        "p95 duration of requests to {{ $labels.route }} is {{ $value | humanizeDuration }} over "
        f"{w} (threshold {a.threshold('p95_seconds').text})."
    )
    return expr, desc


def _cache_connection_errors(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    app, by, w = c.selectors.app, _by(a.by), a.window
    expr = (
        f"sum by ({by}) (rate(covet_cache_errors_total{_sel(app, CONNECTION_ERRORS)}[{w}]))"
        f" / (sum by ({by}) (rate(covet_cache_operation_duration_seconds_count{_sel(app)}[{w}])) > 0)"
        f" > {_num(a.threshold().value)}"
    )
    desc = (
        "{{ $value | humanizePercentage }} of Redis calls failed to connect or timed out over "
        f"{w} (threshold {a.threshold().text})."
    )
    return expr, desc


def _redis_memory(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    r, by = c.selectors.redis, _by(a.by)
    expr = (
        f"max by ({by}) (covet_cache_memory_usage_bytes{_sel(r)})"
        f" / (max by ({by}) (covet_cache_memory_max_bytes{_sel(r)}) > 0) > {_num(a.threshold().value)}"
    )
    desc = (
        "Redis {{ $labels.instance }} uses {{ $value | humanizePercentage }} of maxmemory "
        f"(threshold {a.threshold().text})."
    )
    return expr, desc


def _cache_hit(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    expr = f"covet_cache_hit_ratio{_sel(c.selectors.app)} < {_num(a.threshold().value)}"
    desc = "{{ $value | humanizePercentage }} of cache reads found their key"
    desc += f" (threshold {a.threshold().text})."
    return expr, desc


def _redis_rejected(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    by, w = _by(a.by), a.window
    m = f"covet_redis_connections_rejected_total{_sel(c.selectors.redis)}"
    expr = f"sum by ({by}) (increase({m}[{w}])) > {_num(a.threshold().value)}"
    desc = (
        f"Redis {{{{ $labels.instance }}}} rejected {{{{ $value | humanize }}}} connections in the last {w}."
    )
    return expr, desc


def _health_failing(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    by = _by(a.by)
    expr = f"min by ({by}) (covet_health_check_status{_sel(c.selectors.app)}) == {_num(a.threshold().value)}"
    return expr, "Health check {{ $labels.check }} reports fail (status {{ $value }})."


def _health_degraded(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    by = _by(a.by)
    expr = (
        f"min by ({by}) (covet_health_check_status{_sel(c.selectors.app)}) > 0 <= {_num(a.threshold().value)}"
    )
    return expr, "Health check {{ $labels.check }} reports warn (status {{ $value }})."


def _auth_failures(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    by, w = _by(a.by), a.window
    expr = (
        f"sum by ({by}) (rate(covet_app_auth_failures_total{_sel(c.selectors.app)}[{w}]))"
        f" > {_num(a.threshold().value)}"
    )
    desc = (
        f"{{{{ $value | humanize }}}} authentication failures per second over {w} "
        f"(threshold {a.threshold().text})."
    )
    return expr, desc


SECURITY_KINDS = (
    ("covet_security_rate_limited_total", "rate_limited"),
    ("covet_security_permission_denied_total", "permission_denied"),
    ("covet_security_invalid_tokens_total", "invalid_token"),
)


def _security_events(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    by, w = _by(a.by), a.window
    parts = " or ".join(
        f'label_replace(rate({m}{_sel(c.selectors.app)}[{w}]), "kind", "{kind}", "", "")'
        for m, kind in SECURITY_KINDS
    )
    expr = f"sum by ({by}) ({parts}) > {_num(a.threshold().value)}"
    desc = (
        f"{{{{ $value | humanize }}}} {{{{ $labels.kind }}}} events per second over {w} "
        f"(threshold {a.threshold().text})."
    )
    return expr, desc


def _last_failure_after_success(runs: str, success_ts: str, label: str) -> Builder:
    def build(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
        by = _by(a.by)
        lookback, step = a.threshold("lookback").duration, a.threshold("resolution").duration
        f = f"{runs}{_sel(c.selectors.app, FAILED)}"
        # time of the latest failed run: the latest step at which a failure series appeared or grew
        # (each job run is its own series, so increase() would never see it)
        failed_at = (
            f"max by ({by}) (max_over_time((timestamp({f}) and ({f} > {f} offset {step}"
            f" or {f} unless {f} offset {step}))[{lookback}:{step}]))"
        )
        succeeded_at = f"max by ({by}) (last_over_time({success_ts}{_sel(c.selectors.app)}[{lookback}]))"
        expr = f"{failed_at} > on ({by}) {succeeded_at} or ({failed_at} unless on ({by}) {succeeded_at})"
        desc = (
            f"{label} {{{{ $labels.{a.by[-1]} }}}} failed at {{{{ $value | humanizeTimestamp }}}} "
            "and has not succeeded since."
        )
        return expr, desc

    return build


def _backup_missing(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    by = _by(a.by)
    lookback = a.threshold("lookback").duration
    age = (
        f"time() - max by ({by}) "
        f"(last_over_time(covet_backup_last_success_timestamp{_sel(c.selectors.app)}[{lookback}]))"
    )
    expr = _with_cause(f"{age} > {_num(a.threshold('max_age').value)}", ABSENT_CAUSE)
    desc = (
        "The last successful run of backup {{ $labels.backup }} was {{ $value | humanizeDuration }} ago "
        f"(threshold {a.threshold('max_age').text})."
    )
    return expr, desc


def _migration_stuck(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    app, by = c.selectors.app, _by(a.by)
    expr = (
        f"time() - max by ({by}) (covet_migration_started_timestamp{_sel(app)}) > {_num(a.threshold().value)}"
        f" and on ({by}) max by ({by}) (covet_migration_in_progress{_sel(app)}) > 0"
    )
    desc = (
        "Migration run of {{ $labels.migrator }} has been running for {{ $value | humanizeDuration }} "
        f"(threshold {a.threshold().text})."
    )
    return expr, desc


def _migrations_pending(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    by, lookback = _by(a.by), a.threshold("lookback").duration
    expr = (
        f"min by ({by}) (last_over_time(covet_migration_pending{_sel(c.selectors.app)}[{lookback}]))"
        f" > {_num(a.threshold('pending').value)}"
    )
    desc = (
        "{{ $value | humanize }} migrations of {{ $labels.migrator }} are not applied, as every "
        f"report of the last {lookback} says."
    )
    return expr, desc


def _business_stopped(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    by, w = _by(a.by), a.window
    baseline = a.threshold("baseline").duration
    m = f"covet_business_events_total{_sel(c.selectors.app, NOT_OTHER)}"
    expr = (
        f"sum by ({by}) (increase({m}[{w}])) == 0"
        f" and on ({by}) sum by ({by}) (increase({m}[{baseline}] offset {w}))"
        f" >= {_num(a.threshold('baseline_events').value)}"
    )
    desc = (
        f"No {{{{ $labels.event }}}} event in the last {w}, after at least "
        f"{_num(a.threshold('baseline_events').value)} in the {baseline} before."
    )
    return expr, desc


def _slo_burn(kind: str) -> Builder:
    def build(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
        slo = c.slo
        target = slo.availability_target if kind == "availability" else slo.latency_target
        rows = [b for b in slo.burn_rates if b.severity == a.severity]
        metric = f"covet_slo_http_{kind}_error_ratio"
        budget = f"(1 - {_num(target)})"
        conds = [
            f'({metric}{{window="{b.long_window}"}} > ({_num(b.factor)} * {budget})'
            f' and on (job) {metric}{{window="{b.short_window}"}} > ({_num(b.factor)} * {budget}))'
            for b in rows
        ]
        expr = "max by (job) (" + " or ".join(conds) + ")"
        what = (
            "5xx answers"
            if kind == "availability"
            else f"answers slower than {slo.latency_threshold_seconds:g} s"
        )
        burns = "; ".join(f"{b.factor:g}x over {b.long_window} and {b.short_window}" for b in rows)
        desc = (
            f"{what.capitalize()} are {{{{ $value | humanizePercentage }}}} of requests: the "
            f"{target * 100:g} % {kind} SLO ({slo.window}) error budget burns too fast ({burns})."
        )
        return expr, desc

    return build


def _collector_down(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    up, by = f"up{_sel(c.selectors.collector)}", _by(a.by)
    lookback = a.threshold("lookback").duration
    expr = (
        _with_cause(f"max by ({by}) ({up}) == 0", "scrape_failed")
        + " or "
        + _with_cause(f"{_lost(up, by, lookback)}", "target_gone")
    )
    desc = "Prometheus cannot scrape the collector at {{ $labels.instance }} (job {{ $labels.job }})."
    return expr, desc


def _collector_rate(metric: str, phrase: str) -> Builder:
    def build(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
        by, w = _by(a.by), a.window
        expr = (
            f"sum by ({by}) (rate({metric}{_sel(c.selectors.collector)}[{w}])) > {_num(a.threshold().value)}"
        )
        return expr, f"{{{{ $value | humanize }}}} {phrase} per second over {w}."

    return build


def _watchdog(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    return "vector(1)", "Always firing while Prometheus evaluates rules and reaches Alertmanager."


def _metrics_absent(c: MixinConfig, a: AlertDef) -> tuple[str, str]:
    expr = _with_cause(
        f"absent({c.liveness_metric}{_sel(c.selectors.app)})"
        f" and on () (max(up{_sel(c.selectors.collector)}) == 1)",
        ABSENT_CAUSE,
    )
    return expr, f"The collector is up, but no application has reported {c.liveness_metric}."


BUILDERS: dict[str, Builder] = {
    "DatabaseConnectionPoolExhausted": _pool_exhausted,
    "DatabaseConnectionPoolLeaks": _pool_leaks,
    "DatabaseHighQueryLatency": _query_latency,
    "DatabaseQueryErrors": _query_errors,
    "PostgreSQLDown": _postgresql_down,
    "PostgreSQLTooManyConnections": _pg_connections,
    "PostgreSQLLongRunningTransaction": _pg_gauge(
        "covet_postgresql_oldest_transaction_age_seconds",
        "The oldest transaction in database {{ $labels.database }} has been open for",
        "humanizeDuration",
    ),
    "PostgreSQLTransactionIDWraparound": _pg_gauge(
        "covet_postgresql_xid_age", "Transaction-ID age of database {{ $labels.database }} is", "humanize"
    ),
    "PostgreSQLReplicationLag": _pg_gauge(
        "covet_postgresql_replication_lag_seconds",
        "Replay lag of {{ $labels.instance }} is",
        "humanizeDuration",
    ),
    "PostgreSQLDeadlocks": _pg_deadlocks,
    "PostgreSQLLowCacheHitRatio": _pg_cache_hit,
    "HighMemoryUsage": _used_percent(
        "covet_system_memory_usage_bytes",
        "covet_system_memory_total_bytes",
        "Memory of {{ $labels.instance }}",
    ),
    "DiskSpaceLow": _used_percent(
        "covet_disk_usage_bytes",
        "covet_disk_total_bytes",
        "Filesystem {{ $labels.path }} on {{ $labels.instance }}",
    ),
    "HighCPUUsage": _cpu,
    "ServiceDown": _service_down,
    "HighHTTPErrorRate": _http_error_rate,
    "HighHTTPLatency": _http_latency,
    "CacheConnectionErrors": _cache_connection_errors,
    "RedisMemoryHigh": _redis_memory,
    "CacheLowHitRatio": _cache_hit,
    "RedisRejectedConnections": _redis_rejected,
    "HealthCheckFailing": _health_failing,
    "HealthCheckDegraded": _health_degraded,
    "AuthenticationFailureSpike": _auth_failures,
    "SecurityEventsSpike": _security_events,
    "BackupFailed": _last_failure_after_success(
        "covet_backup_runs_total", "covet_backup_last_success_timestamp", "Backup"
    ),
    "BackupMissing": _backup_missing,
    "MigrationStuck": _migration_stuck,
    "MigrationFailed": _last_failure_after_success(
        "covet_migration_runs_total", "covet_migration_last_success_timestamp", "Migration run of"
    ),
    "MigrationsPending": _migrations_pending,
    "BusinessEventsStopped": _business_stopped,
    "HTTPAvailabilityBudgetBurnFast": _slo_burn("availability"),
    "HTTPAvailabilityBudgetBurnSlow": _slo_burn("availability"),
    "HTTPLatencyBudgetBurnFast": _slo_burn("latency"),
    "HTTPLatencyBudgetBurnSlow": _slo_burn("latency"),
    "CollectorDown": _collector_down,
    "CollectorRefusingPoints": _collector_rate(
        "otelcol_receiver_refused_metric_points_total", "points refused by receiver {{ $labels.receiver }}"
    ),
    "CollectorExportFailures": _collector_rate(
        "otelcol_exporter_send_failed_metric_points_total",
        "points failed to send by exporter {{ $labels.exporter }}",
    ),
    "Watchdog": _watchdog,
    "CovetMetricsAbsent": _metrics_absent,
}

# ── recording rules ─────────────────────────────────────────────────────────────────────────────


def _hit_ratio_rules(c: MixinConfig) -> list[dict[str, Any]]:
    w = HIT_RATIO_WINDOW
    app, pg = c.selectors.app, c.selectors.postgresql
    hits = f"sum by (job) (rate(covet_cache_hits_total{_sel(app)}[{w}]))"
    misses = f"sum by (job) (rate(covet_cache_misses_total{_sel(app)}[{w}]))"
    # a job with hits but no miss series yet (or the reverse) still gets a ratio
    h0, m0 = f"({hits} or 0 * {misses})", f"({misses} or 0 * {hits})"
    pby = "job, instance, database"
    phit = f"sum by ({pby}) (rate(covet_postgresql_blocks_hit_total{_sel(pg)}[{w}]))"
    pread = f"sum by ({pby}) (rate(covet_postgresql_blocks_read_total{_sel(pg)}[{w}]))"
    return [
        {"record": "covet_cache_hit_ratio", "expr": f"{h0} / (({h0} + {m0}) > 0)"},
        {"record": "covet_postgresql_cache_hit_ratio", "expr": f"{phit} / (({phit} + {pread}) > 0)"},
    ]


def _slo_selectors(c: MixinConfig) -> tuple[str, str]:
    return c.selectors.app, c.slo.request_selector


def _slo_error_ratio(c: MixinConfig, kind: str, window: str, increase: bool = False) -> str:
    """Share of requests that miss the objective over `window`, per job; absent without traffic."""
    fn = "increase" if increase else "rate"
    app, extra = _slo_selectors(c)
    total = f"sum by (job) ({fn}(covet_http_requests_total{_sel(app, extra)}[{window}]))"
    if kind == "availability":
        bad = f"sum by (job) ({fn}(covet_http_requests_total{_sel(app, extra, STATUS_5XX)}[{window}]))"
        return f"({bad} or 0 * {total}) / ({total} > 0)"
    le = _le_matcher(c.slo.latency_threshold_seconds)
    count = f"sum by (job) ({fn}(covet_http_request_duration_seconds_count{_sel(app, extra)}[{window}]))"
    good = f"sum by (job) ({fn}(covet_http_request_duration_seconds_bucket{_sel(app, extra, le)}[{window}]))"
    return f"1 - {good} / ({count} > 0)"


def _slo_recording_rules(c: MixinConfig) -> list[dict[str, Any]]:
    rules = []
    for kind in ("availability", "latency"):
        for window in c.slo.windows:
            rules.append(
                {
                    "record": f"covet_slo_http_{kind}_error_ratio",
                    "expr": _slo_error_ratio(c, kind, window),
                    "labels": {"window": window},
                }
            )
    return rules


def _slo_budget_rules(c: MixinConfig) -> list[dict[str, Any]]:
    rules = []
    for kind, target in (("availability", c.slo.availability_target), ("latency", c.slo.latency_target)):
        ratio = _slo_error_ratio(c, kind, c.slo.window, increase=True)
        rules.append(
            {
                "record": f"covet_slo_http_{kind}_budget_remaining_ratio",
                "expr": f"1 - ({ratio}) / (1 - {_num(target)})",
            }
        )
    return rules


# ── assembling ──────────────────────────────────────────────────────────────────────────────────


def extra_labels(a: AlertDef) -> dict[str, str]:
    """Labels beyond severity and team: the SLO of a burn-rate alert (Alertmanager inhibits the
    slow burn of an SLO while its fast burn pages)."""
    if a.group == "slo":
        return {"slo": "http-availability" if "Availability" in a.name else "http-latency"}
    return {}


def alert_rule(c: MixinConfig, a: AlertDef) -> dict[str, Any]:
    expr, description = BUILDERS[a.name](c, a)
    rule: dict[str, Any] = {"alert": a.name, "expr": expr}
    if a.for_ not in ("0m", "0s"):
        rule["for"] = a.for_
    rule["labels"] = {"severity": a.severity, "team": a.team, **extra_labels(a)}
    summary = a.summary + (f" ({_locate(a)})" if a.by else "")
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": c.runbook_url(a),
        "dashboard_url": c.dashboard_url(a),
    }
    return rule


def rule_files(c: MixinConfig) -> dict[str, dict[str, Any]]:
    """File name -> rule file content, one file per alert group (groups without enabled alerts
    and without recording rules are left out)."""
    from .config import ALERT_GROUPS

    hit = {r["record"]: r for r in _hit_ratio_rules(c)}
    recording: dict[str, list[dict[str, Any]]] = {
        "database": [hit["covet_postgresql_cache_hit_ratio"]],
        "cache": [hit["covet_cache_hit_ratio"]],
        "slo": _slo_recording_rules(c),
    }
    files: dict[str, dict[str, Any]] = {}
    for group in ALERT_GROUPS:
        alerts = [alert_rule(c, a) for a in c.enabled_alerts if a.group == group]
        rules = recording.get(group, []) + alerts
        if not rules:
            continue
        groups: list[dict[str, Any]] = [
            {"name": f"covet-{group.replace('_', '-')}", "interval": c.evaluation_interval, "rules": rules}
        ]
        if group == "slo":
            groups.append(
                {"name": "covet-slo-budget", "interval": c.slo.budget_interval, "rules": _slo_budget_rules(c)}
            )
        files[f"covet-{group.replace('_', '-')}.rules.yml"] = {"groups": groups}
    return files


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # long expressions as folded-free plain/quoted scalars; keep key order as built
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)

HEADER = (
    "# Generated by `covet-otel mixin build` from covet_otel/mixin/config.py. Do not edit: override\n"
    "# thresholds in a YAML file and rebuild (docs/alerts.md).\n"
)


def dump_yaml(data: Any) -> str:
    return HEADER + yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


def write(config: MixinConfig, out_dir: Path) -> list[Path]:
    rules_dir = Path(out_dir)
    rules_dir.mkdir(parents=True, exist_ok=True)
    files = rule_files(config)
    for stale in rules_dir.glob("covet-*.rules.yml"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, content in files.items():
        path = rules_dir / name
        path.write_text(dump_yaml(content), encoding="utf-8")
        written.append(path)
    from . import alertmanager

    written += alertmanager.write(config, Path(out_dir))
    return written
