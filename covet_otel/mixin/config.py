"""The one definition the consumers share: alerts, dashboards and runbooks read it (DESIGN.md,
"Consumers from one source"). Defaults live here; a user overrides them from a YAML file.
docs/alerts.md documents the override file for users.

Public API (stable; the dashboards and runbooks generators depend on it)::

    from covet_otel.mixin.config import load_config, MixinConfig, AlertDef, Threshold

    cfg = load_config()                      # defaults
    cfg = load_config(Path("my.yaml"))       # defaults + the user's overrides (errors name the key)

    cfg.alerts                               # tuple[AlertDef, ...], inventory order
    cfg.enabled_alerts                       # the ones the build writes (enabled: false drops one)
    cfg.alert("DiskSpaceLow")                # KeyError naming the unknown alert
    cfg.alerts_in_group("database")          # by rule group (ALERT_GROUPS)
    a = cfg.alert("DiskSpaceLow")
    a.name, a.group, a.severity, a.team, a.for_      # "for" in YAML and in the rule file
    a.threshold()                            # the primary limit (first); .value, .unit, .text
    a.threshold("used_percent")              # a named one; a.thresholds is the whole tuple
    a.limits                                 # thresholds compared against (draw these)
                                             # (role "param": lookbacks/windows in seconds, .duration)
    a.window                                 # range of its rate()/increase() ("5m"), "" when none
    a.by                                     # labels that locate it (aggregation, summary)
    a.dashboard_vars                         # labels the dashboard link fills in (None: all of by)
    a.meaning, a.summary                     # what it means (docs, runbooks); the summary line
    a.dashboard_uid, a.panel_id              # panel_id may be None
    a.runbook_file, a.runbook_anchor, a.runbook_path   # "disk-space-low.md", "", "disk-space-low.md"
    cfg.runbook_url(a)                       # runbook base URL + runbook_path
    cfg.dashboard_url(a)                     # {grafana_url}/d/{uid}?var-job={{ $labels.job | urlquery }}&...
                                             # (Grafana variables are named like the labels)
    cfg.selectors.app / .redis / .postgresql / .host / .collector   # PromQL label matchers
    cfg.selectors.job_label, cfg.selectors.instance_label
    cfg.grafana_url, cfg.runbook_base_url
    cfg.alertmanager                         # receivers, secrets dir, working hours (AlertmanagerConfig)
    cfg.slo.availability_target, .latency_target, .latency_threshold_seconds, .window,
    cfg.slo.burn_rates                      # the multi-window multi-burn-rate table (BurnRate)
    RECORDING_RULES                          # names of every recording rule the build writes

Thresholds are written once, here: the alert expressions use `Threshold.value`, dashboards draw
it, runbooks quote `Threshold.text`. Units: "percent" (0-100), "ratio" (0-1), "seconds", "bytes",
"per_second", "count", "transactions".

Override file (every key optional; an unknown key or a wrong type is a ConfigError naming it)::

    grafana_url: https://grafana.example.com
    runbook_base_url: https://github.com/acme/covet-otel/blob/main/runbooks/
    selectors:
      app: 'job=~"shop|billing"'
    slo:
      availability_target: 0.9995
    alerts:
      DiskSpaceLow:
        for: 10m
        thresholds: {used_percent: 85}
      PostgreSQLReplicationLag:
        enabled: false
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Severity = Literal["critical", "high", "medium", "low", "none"]
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "none")
TEAMS: tuple[str, ...] = ("platform", "database", "security")

# Rule groups: the catalogue's groups (covet_otel.catalogue.GROUPS) plus slo, collector, meta.
ALERT_GROUPS: tuple[str, ...] = (
    "database",
    "system",
    "http",
    "cache",
    "health",
    "security",
    "backup_migration",
    "business",
    "slo",
    "collector",
    "meta",
)

# Dashboard UIDs fixed for every consumer.
DASHBOARD_UIDS: tuple[str, ...] = (
    "covetpy-db-pool",
    "covetpy-query-perf",
    "covetpy-security",
    "covetpy-system",
    "covetpy-cache",
    "covetpy-business",
    "covetpy-backup",
    "covetpy-migrations",
    "covet-overview",
    "covet-http",
    "covet-slo",
    "covet-postgresql",
    "covet-redis",
    "covet-collector",
)

# Every recording rule the build writes; each is a catalogue entry with source "rule"
# (covet_otel/catalogue/rules.py), so dashboards may query them like any metric.
RECORDING_RULES: tuple[str, ...] = (
    "covet_cache_hit_ratio",
    "covet_postgresql_cache_hit_ratio",
    "covet_slo_http_availability_error_ratio",
    "covet_slo_http_latency_error_ratio",
    "covet_slo_http_availability_budget_remaining_ratio",
    "covet_slo_http_latency_budget_remaining_ratio",
)

UNITS: tuple[str, ...] = ("percent", "ratio", "seconds", "bytes", "per_second", "count", "transactions")

_DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class ConfigError(ValueError):
    """A bad override: the message names the key (e.g. ``alerts.DiskSpaceLow.for``)."""


def duration_seconds(value: str) -> float:
    """Seconds of a Prometheus duration ("1h30m" -> 5400.0)."""
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a Prometheus duration such as 30s, 5m, 1h30m, 7d")
    return sum(int(n) * _DURATION_SECONDS[u] for n, u in _DURATION_PART.findall(value))


def _format_number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:,.0f}".replace(",", " ")


def human_seconds(seconds: float) -> str:
    """Short human form of a duration: 90 -> "1m30s", 93600 -> "1d2h"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out += f"{n}{unit}"
    return out


@dataclass(frozen=True)
class Threshold:
    """One number an alert compares against, with its unit (see UNITS)."""

    name: str
    value: float
    unit: str
    description: str = ""
    # "limit": compared against (dashboards draw it); "param": a window or lookback of the
    # expression, in seconds (overridable like a limit, never drawn)
    role: Literal["limit", "param"] = "limit"

    @property
    def duration(self) -> str:
        """A param as a Prometheus duration ("1d1h")."""
        return human_seconds(self.value)

    @property
    def text(self) -> str:
        """How runbooks and annotations quote it: "90 %", "0.5 s", "26h", "5 %"."""
        if self.unit == "percent":
            return f"{_format_number(self.value)} %"
        if self.unit == "ratio":
            return f"{_format_number(self.value * 100)} %"
        if self.unit == "seconds":
            return f"{_format_number(self.value)} s" if self.value < 120 else human_seconds(self.value)
        if self.unit == "bytes":
            return f"{_format_number(self.value)} B"
        if self.unit == "per_second":
            return f"{_format_number(self.value)}/s"
        return _format_number(self.value)


@dataclass(frozen=True)
class AlertDef:
    """Everything the consumers need to know about one alert (its expression is built in
    covet_otel.mixin.alerts from these fields)."""

    name: str
    group: str
    severity: Severity
    team: str
    for_: str
    summary: str  # one line; what is wrong (the generated annotation adds where and how much)
    meaning: str  # what it means for users, for the docs table and runbooks
    thresholds: tuple[Threshold, ...] = ()
    window: str = ""  # range of its rate()/increase()
    by: tuple[str, ...] = ("job", "instance")
    dashboard_uid: str = "covet-overview"
    panel_id: int | None = None
    runbook_file: str = ""  # under runbooks/; default: kebab-case of the name + ".md"
    runbook_anchor: str = ""
    enabled: bool = True
    # labels passed to the dashboard as variables (var-<label>); None: all of `by`
    dashboard_vars: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.runbook_file:
            object.__setattr__(self, "runbook_file", kebab_case(self.name) + ".md")

    def threshold(self, name: str | None = None) -> Threshold:
        """The named threshold (limit or param), or the primary (first) limit."""
        if name is None:
            if not self.limits:
                raise KeyError(f"{self.name} has no threshold")
            return self.limits[0]
        for t in self.thresholds:
            if t.name == name:
                return t
        raise KeyError(f"{self.name} has no threshold {name!r}; it has {[t.name for t in self.thresholds]}")

    @property
    def limits(self) -> tuple[Threshold, ...]:
        """The thresholds compared against (what dashboards draw and runbooks quote)."""
        return tuple(t for t in self.thresholds if t.role == "limit")

    @property
    def link_vars(self) -> tuple[str, ...]:
        """The labels its dashboard links set as variables (var-<label>)."""
        return self.by if self.dashboard_vars is None else self.dashboard_vars

    @property
    def runbook_path(self) -> str:
        return self.runbook_file + (f"#{self.runbook_anchor}" if self.runbook_anchor else "")


def kebab_case(name: str) -> str:
    """DatabaseConnectionPoolExhausted -> database-connection-pool-exhausted; HTTP, SLO, CPU and
    PostgreSQL stay one word."""
    words = re.findall(r"PostgreSQL|HTTP|CPU|ID|[A-Z][a-z0-9]*|[a-z0-9]+", name)
    return "-".join(w.lower() for w in words)


@dataclass(frozen=True)
class Selectors:
    """PromQL label matchers (without braces) that pick each source's series, and the label names
    that locate a series. job/instance come from service.name/service.instance.id (docs/collector.md)."""

    # apps: only apps report the covet_* names the app-side alerts read, so any job will do; narrow
    # it to pick some apps
    app: str = 'job=~".+"'
    redis: str = 'job="redis"'
    postgresql: str = 'job="postgresql"'
    host: str = 'job="node"'
    # Prometheus's scrape jobs of the collector (exporter :8889 and its own metrics :8888)
    collector: str = 'job=~"otelcol|otelcol-self"'
    job_label: str = "job"
    instance_label: str = "instance"


@dataclass(frozen=True)
class BurnRate:
    """One row of the multi-window multi-burn-rate table (Google SRE workbook, ch. 5)."""

    long_window: str
    short_window: str
    factor: float
    severity: Severity  # "critical" pages (fast burn), "medium" is a ticket (slow burn)


@dataclass(frozen=True)
class SLOConfig:
    availability_target: float = 0.999  # share of requests without a 5xx answer
    latency_target: float = 0.99  # share of requests answered within latency_threshold_seconds
    latency_threshold_seconds: float = 0.5  # must be a bucket boundary of the HTTP histogram
    window: str = "30d"  # the SLO period; error budget remaining is computed over it
    request_selector: str = ""  # extra matchers, e.g. 'route!~"/health.*"' to leave probes out
    burn_rates: tuple[BurnRate, ...] = (
        BurnRate("1h", "5m", 14.4, "critical"),
        BurnRate("6h", "30m", 6.0, "critical"),
        BurnRate("1d", "2h", 3.0, "medium"),
        BurnRate("3d", "6h", 1.0, "medium"),
    )
    # how often the budget-remaining rules over the whole window run (they read 30 days of data)
    budget_interval: str = "5m"

    @property
    def windows(self) -> tuple[str, ...]:
        """Every window a burn-rate rule reads, shortest first (the error-ratio rules' window label)."""
        ws = {w for b in self.burn_rates for w in (b.long_window, b.short_window)}
        return tuple(sorted(ws, key=duration_seconds))


@dataclass(frozen=True)
class AlertmanagerConfig:
    """Receivers and timing of alerts/alertmanager.yml. No secret is ever written into the file:
    PagerDuty routing keys, the Slack webhook URL, the dead man's switch URL and the SMTP password
    are read by Alertmanager from files under `secrets_dir` (`*_file` fields). The `*_url` fields
    below, when set, are written as plain URLs instead of their `*_file`: for local sinks only
    (tests, the compose demo), never for a URL that carries a token."""

    secrets_dir: str = "/etc/alertmanager/secrets"
    smtp_smarthost: str = "localhost:25"
    smtp_from: str = "alertmanager@example.com"
    smtp_auth_username: str = ""  # set it to authenticate; the password is read from smtp-password
    smtp_require_tls: bool = True
    email_oncall: str = "oncall@example.com"  # critical
    email_team: str = "team@example.com"  # high
    email_security: str = "security@example.com"  # everything of team security
    email_dba: str = "dba@example.com"  # critical and high of team database
    email_digest: str = "ops@example.com"  # the hourly digest of low alerts
    slack_channel_critical: str = "#critical"
    slack_channel_alerts: str = "#alerts"
    slack_channel_security: str = "#security"
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    slack_api_url: str = ""  # empty: api_url_file = secrets_dir/slack-webhook-url
    deadmans_switch_url: str = ""  # empty: url_file = secrets_dir/deadmans-switch-url
    # working hours (low alerts are muted outside them) and the weekly maintenance window (high,
    # medium and low muted inside it); Alertmanager time_intervals syntax
    time_zone: str = "UTC"
    working_days: str = "monday:friday"
    working_hours_start: str = "09:00"
    working_hours_end: str = "18:00"
    maintenance_day: str = "sunday"
    maintenance_start: str = "02:00"
    maintenance_end: str = "04:00"
    # grouping and repeat per severity (the pack's: critical at once, high 5 min, medium 15 min,
    # low an hourly digest)
    critical_group_wait: str = "10s"
    critical_group_interval: str = "1m"
    critical_repeat_interval: str = "1h"
    high_group_wait: str = "30s"
    high_group_interval: str = "5m"
    high_repeat_interval: str = "4h"
    medium_group_wait: str = "1m"
    medium_group_interval: str = "15m"
    medium_repeat_interval: str = "12h"
    low_group_wait: str = "5m"
    low_group_interval: str = "1h"
    low_repeat_interval: str = "24h"
    watchdog_repeat_interval: str = "1m"


def _t(name: str, value: float, unit: str, description: str = "") -> Threshold:
    return Threshold(name, value, unit, description)


def _p(name: str, seconds: float, description: str = "") -> Threshold:
    return Threshold(name, seconds, "seconds", description, "param")


_LOCATE_POOL = ("job", "instance", "pool")
_LOCATE_DB = ("job", "instance", "database")

DEFAULT_ALERTS: tuple[AlertDef, ...] = (
    # ── database (app side: asyncpg pools and queries) ──────────────────────────────────────────
    AlertDef(
        "DatabaseConnectionPoolExhausted", "database", "critical", "platform", "2m",
        "Database connection pool exhausted",
        "Every connection of an asyncpg pool is in use and acquires wait or time out: requests "
        "that need the database queue up or fail.",
        (
            _t("utilization", 1.0, "ratio", "in-use connections / pool max size"),
            _t("acquire_wait_p95_seconds", 0.1, "seconds", "p95 wait for a connection"),
        ),
        "5m", _LOCATE_POOL, "covetpy-db-pool",
    ),
    AlertDef(
        "DatabaseConnectionPoolLeaks", "database", "critical", "platform", "0m",
        "Database connections leaked",
        "Connections were acquired and not released (or held far too long): the pool shrinks "
        "until it is exhausted.",
        (_t("leaked", 0, "count", "leaked connections within the window"),),
        "15m", _LOCATE_POOL, "covetpy-db-pool",
    ),
    AlertDef(
        "DatabaseHighQueryLatency", "database", "high", "platform", "10m",
        "Database query latency high",
        "The 95th percentile of query duration is above the threshold: pages that query the "
        "database are slow.",
        (_t("p95_seconds", 0.5, "seconds", "p95 query duration"),),
        "5m", _LOCATE_POOL, "covetpy-query-perf",
    ),
    AlertDef(
        "DatabaseQueryErrors", "database", "high", "platform", "10m",
        "Database queries failing",
        "A share of queries above the threshold raise an error (constraint, syntax, connection...).",
        (_t("error_ratio", 0.05, "ratio", "failed queries / queries"),),
        "5m", _LOCATE_POOL, "covetpy-query-perf",
    ),
    # ── database (server side: postgres_exporter through the collector) ─────────────────────────
    AlertDef(
        "PostgreSQLDown", "database", "critical", "database", "1m",
        "PostgreSQL server down",
        "postgres_exporter cannot connect to the server (covet_postgresql_up is 0), or the "
        "server's series stopped arriving while they arrived within the lookback.",
        (_p("lookback", 3600, "how long a vanished server is still reported"),),
        "", ("job", "instance"), "covet-postgresql",
    ),
    AlertDef(
        "PostgreSQLTooManyConnections", "database", "high", "database", "5m",
        "PostgreSQL near max_connections",
        "Server connections are close to max_connections: new connections will be refused.",
        (_t("used_ratio", 0.8, "ratio", "connections / max_connections"),),
        "", ("job", "instance"), "covet-postgresql",
    ),
    AlertDef(
        "PostgreSQLLongRunningTransaction", "database", "high", "database", "2m",
        "Long-running PostgreSQL transaction",
        "A transaction has been open longer than the threshold: it holds locks and keeps vacuum "
        "from removing dead rows.",
        (_t("age_seconds", 600, "seconds", "age of the oldest open transaction"),),
        "", _LOCATE_DB, "covet-postgresql",
    ),
    AlertDef(
        "PostgreSQLTransactionIDWraparound", "database", "high", "database", "15m",
        "PostgreSQL transaction ID age high",
        "The database's transaction-ID age approaches wraparound (2^31): PostgreSQL stops "
        "accepting writes before it gets there. Autovacuum is not freezing rows fast enough.",
        (_t("xid_age", 1_000_000_000, "transactions", "age(datfrozenxid)"),),
        "", _LOCATE_DB, "covet-postgresql",
    ),
    AlertDef(
        "PostgreSQLReplicationLag", "database", "high", "database", "5m",
        "PostgreSQL replica lagging",
        "The replica replays the primary's changes later than the threshold: reads from it are "
        "stale, and a failover would lose that much.",
        (_t("lag_seconds", 60, "seconds", "replay lag"),),
        "", ("job", "instance"), "covet-postgresql",
    ),
    AlertDef(
        "PostgreSQLDeadlocks", "database", "medium", "database", "0m",
        "PostgreSQL deadlocks",
        "Transactions deadlocked and PostgreSQL aborted one of them: the application saw errors.",
        (_t("deadlocks", 0, "count", "deadlocks within the window"),),
        "15m", _LOCATE_DB, "covet-postgresql",
    ),
    AlertDef(
        "PostgreSQLLowCacheHitRatio", "database", "low", "database", "30m",
        "PostgreSQL buffer cache hit ratio low",
        "Too many block reads miss shared_buffers and go to the OS or disk: queries slow down.",
        (_t("hit_ratio", 0.9, "ratio", "blocks hit / blocks read or hit, 5 min"),),
        "", _LOCATE_DB, "covet-postgresql",
    ),
    # ── system ──────────────────────────────────────────────────────────────────────────────────
    AlertDef(
        "HighMemoryUsage", "system", "critical", "platform", "5m",
        "Memory usage high",
        "Host memory in use is above the threshold: the OOM killer or swapping is close.",
        (_t("used_percent", 90, "percent", "used / total memory"),),
        "", ("job", "instance"), "covetpy-system",
    ),
    AlertDef(
        "DiskSpaceLow", "system", "critical", "platform", "5m",
        "Disk space low",
        "A watched filesystem (COVET_DISK_PATHS) is almost full: writes, logs and the database fail "
        "when it fills.",
        (_t("used_percent", 90, "percent", "used / total space"),),
        "", ("job", "instance", "path"), "covetpy-system",
    ),
    AlertDef(
        "HighCPUUsage", "system", "high", "platform", "15m",
        "CPU usage high",
        "Host CPU has been busy above the threshold for a long time: latency rises, work queues up.",
        (_t("used_percent", 90, "percent", "host CPU busy"),),
        "", ("job", "instance"), "covetpy-system",
    ),
    # ── http ────────────────────────────────────────────────────────────────────────────────────
    AlertDef(
        "ServiceDown", "http", "critical", "platform", "1m",
        "Service down",
        "An application stopped reporting: its scrape target is down, or every process of the job "
        "stopped pushing metrics.",
        (
            _p("lookback", 3600, "how long a vanished job is still reported"),
            _p(
                "collector_grace", 120,
                "a vanished job is not reported while a collector scrape failed within this time: "
                "its pushed series come back at the app's next export after the collector does",
            ),
        ),
        "", ("job", "instance"), "covet-overview",
    ),
    AlertDef(
        "HighHTTPErrorRate", "http", "high", "platform", "5m",
        "HTTP 5xx error rate high",
        "A share of a route's requests above the threshold end in a 5xx answer.",
        (
            _t("error_ratio", 0.05, "ratio", "5xx responses / responses"),
            _t("min_request_rate", 0.05, "per_second", "routes with less traffic are ignored"),
        ),
        "5m", ("job", "route"), "covet-http",
    ),
    AlertDef(
        "HighHTTPLatency", "http", "medium", "platform", "10m",
        "HTTP latency high",
        "The 95th percentile of a route's request duration is above the threshold.",
        (
            _t("p95_seconds", 1.0, "seconds", "p95 request duration"),
            _t("min_request_rate", 0.05, "per_second", "routes with less traffic are ignored"),
        ),
        "5m", ("job", "route"), "covet-http",
    ),
    # ── cache ───────────────────────────────────────────────────────────────────────────────────
    AlertDef(
        "CacheConnectionErrors", "cache", "critical", "platform", "1m",
        "Redis connection errors",
        "The application cannot reach Redis (connection refused, broken or timed out) for a share "
        "of its cache calls above the threshold.",
        (_t("error_ratio", 0.05, "ratio", "connection and timeout errors / cache calls"),),
        "5m", ("job", "instance"), "covetpy-cache",
    ),
    AlertDef(
        "RedisMemoryHigh", "cache", "high", "platform", "5m",
        "Redis memory near maxmemory",
        "Redis uses most of its maxmemory: it evicts keys or refuses writes, depending on its policy.",
        (_t("used_ratio", 0.9, "ratio", "used_memory / maxmemory"),),
        "", ("job", "instance"), "covet-redis",
    ),
    AlertDef(
        "CacheLowHitRatio", "cache", "low", "platform", "30m",
        "Cache hit ratio low",
        "Fewer cache reads than the threshold find their key: the database takes the load.",
        (_t("hit_ratio", 0.8, "ratio", "hits / (hits + misses), 5 min"),),
        "", ("job",), "covetpy-cache",
    ),
    AlertDef(
        "RedisRejectedConnections", "cache", "medium", "platform", "0m",
        "Redis rejecting connections",
        "Redis refused connections because maxclients is reached.",
        (_t("rejected", 0, "count", "rejected connections within the window"),),
        "5m", ("job", "instance"), "covet-redis",
    ),
    # ── health ──────────────────────────────────────────────────────────────────────────────────
    AlertDef(
        "HealthCheckFailing", "health", "critical", "platform", "2m",
        "Health check failing",
        "A health check reports fail (0): the component it checks is unusable for this process.",
        (_t("status", 0, "count", "0 = fail, 0.5 = warn, 1 = pass"),),
        "", ("job", "instance", "check"), "covet-overview",
    ),
    AlertDef(
        "HealthCheckDegraded", "health", "medium", "platform", "15m",
        "Health check degraded",
        "A health check has reported warn (0.5) for a long time.",
        (_t("status", 0.5, "count", "0 = fail, 0.5 = warn, 1 = pass"),),
        "", ("job", "instance", "check"), "covet-overview",
    ),
    # ── security ────────────────────────────────────────────────────────────────────────────────
    AlertDef(
        "AuthenticationFailureSpike", "security", "high", "security", "2m",
        "Authentication failures spiking",
        "Authentication failures arrive faster than the threshold: credential stuffing, a brute "
        "force attempt, or a broken login flow.",
        (_t("rate", 1.0, "per_second", "failed authentications per second"),),
        "5m", ("job",), "covetpy-security",
    ),
    AlertDef(
        "SecurityEventsSpike", "security", "high", "security", "5m",
        "Security events spiking",
        "Rate-limited requests, permission denials or invalid tokens arrive faster than the "
        "threshold.",
        (_t("rate", 1.0, "per_second", "events per second, per kind"),),
        "5m", ("job", "kind"), "covetpy-security", dashboard_vars=("job",),
    ),
    # ── backup_migration ────────────────────────────────────────────────────────────────────────
    AlertDef(
        "BackupFailed", "backup_migration", "critical", "platform", "0m",
        "Backup failed",
        "The latest run of a backup failed and no run succeeded since: there is no fresh backup "
        "to restore from.",
        (
            _p("lookback", 90000, "how far back a failed run is remembered (25h)"),
            _p("resolution", 60, "step at which new failures are looked for"),
        ),
        "", ("job", "backup"), "covetpy-backup",
    ),
    AlertDef(
        "BackupMissing", "backup_migration", "high", "platform", "0m",
        "No recent successful backup",
        "The last successful run of a backup is older than its period allows.",
        (
            _t("max_age", 93600, "seconds", "age of the last success (26h: daily backups)"),
            _p("lookback", 604800, "how far back a backup's last success is looked up"),
        ),
        "", ("job", "backup"), "covetpy-backup",
    ),
    AlertDef(
        "MigrationStuck", "backup_migration", "high", "platform", "0m",
        "Migration running too long",
        "A schema migration has been running longer than the threshold: it probably waits on a "
        "lock and blocks the tables it alters.",
        (_t("running_seconds", 900, "seconds", "time since the migration started"),),
        "", ("job", "instance", "migrator"), "covetpy-migrations",
    ),
    AlertDef(
        "MigrationFailed", "backup_migration", "high", "platform", "0m",
        "Migration failed",
        "The latest migration run failed and none succeeded since: the schema may be half-applied "
        "or behind the code.",
        (
            _p("lookback", 90000, "how far back a failed run is remembered (25h)"),
            _p("resolution", 60, "step at which new failures are looked for"),
        ),
        "", ("job", "migrator"), "covetpy-migrations",
    ),
    AlertDef(
        "MigrationsPending", "backup_migration", "low", "platform", "1h",
        "Migrations pending",
        "Every process that reported within the lookback still sees unapplied migrations: the "
        "deploy did not run them.",
        (
            _t("pending", 0, "count", "unapplied migrations"),
            _p("lookback", 21600, "reports considered (6h)"),
        ),
        "", ("job", "migrator"), "covetpy-migrations",
    ),
    # ── business ────────────────────────────────────────────────────────────────────────────────
    AlertDef(
        "BusinessEventsStopped", "business", "medium", "platform", "0m",
        "Business events stopped",
        "A business event that was recorded steadily has not been recorded for the whole window.",
        (
            _t("baseline_events", 10, "count", "events in the baseline window before the silence"),
            _p("baseline", 7200, "baseline window (2h)"),
        ),
        "30m", ("job", "event"), "covetpy-business",
    ),
    # ── slo (multi-window multi-burn-rate; windows and factors in SLOConfig.burn_rates) ─────────
    AlertDef(
        "HTTPAvailabilityBudgetBurnFast", "slo", "critical", "platform", "2m",
        "HTTP availability error budget burning fast",
        "5xx answers consume the availability error budget so fast that it would be gone in days.",
        (), "", ("job",), "covet-slo", None, "http-slo-burn-rate.md", "availability-fast-burn",
    ),
    AlertDef(
        "HTTPAvailabilityBudgetBurnSlow", "slo", "medium", "platform", "15m",
        "HTTP availability error budget burning",
        "5xx answers consume the availability error budget faster than the SLO window allows.",
        (), "", ("job",), "covet-slo", None, "http-slo-burn-rate.md", "availability-slow-burn",
    ),
    AlertDef(
        "HTTPLatencyBudgetBurnFast", "slo", "critical", "platform", "2m",
        "HTTP latency error budget burning fast",
        "Slow answers consume the latency error budget so fast that it would be gone in days.",
        (), "", ("job",), "covet-slo", None, "http-slo-burn-rate.md", "latency-fast-burn",
    ),
    AlertDef(
        "HTTPLatencyBudgetBurnSlow", "slo", "medium", "platform", "15m",
        "HTTP latency error budget burning",
        "Slow answers consume the latency error budget faster than the SLO window allows.",
        (), "", ("job",), "covet-slo", None, "http-slo-burn-rate.md", "latency-slow-burn",
    ),
    # ── collector ───────────────────────────────────────────────────────────────────────────────
    AlertDef(
        "CollectorDown", "collector", "critical", "platform", "1m",
        "OpenTelemetry collector down",
        "Prometheus cannot scrape the collector: no app, Redis, host or PostgreSQL metric arrives.",
        (_p("lookback", 3600, "how long a vanished collector target is still reported"),),
        "", ("job", "instance"), "covet-collector",
    ),
    AlertDef(
        "CollectorRefusingPoints", "collector", "high", "platform", "5m",
        "Collector refusing data points",
        "The collector's memory_limiter refuses incoming points: data is being dropped.",
        (_t("rate", 0, "per_second", "refused points per second"),),
        "5m", ("job", "instance", "receiver"), "covet-collector",
    ),
    AlertDef(
        "CollectorExportFailures", "collector", "high", "platform", "5m",
        "Collector failing to export",
        "An exporter of the collector fails to send points: they are retried, then dropped.",
        (_t("rate", 0, "per_second", "points that failed to send per second"),),
        "5m", ("job", "instance", "exporter"), "covet-collector",
    ),
    # ── meta ────────────────────────────────────────────────────────────────────────────────────
    AlertDef(
        "Watchdog", "meta", "none", "platform", "0m",
        "Alerting pipeline heartbeat",
        "Always firing. If the dead man's switch receiver stops getting it, Prometheus, "
        "Alertmanager or the path between them is broken.",
        (), "", (), "covet-overview",
    ),
    AlertDef(
        "CovetMetricsAbsent", "meta", "high", "platform", "10m",
        "No application is reporting covet metrics",
        "The collector is up but no application's covet_* series arrive: every app is down, "
        "misconfigured (OTEL_EXPORTER_OTLP_ENDPOINT) or cannot reach the collector.",
        (), "", (), "covet-overview",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class MixinConfig:
    """The whole definition. Build it with load_config(); never mutate (frozen)."""

    selectors: Selectors = field(default_factory=Selectors)
    # Placeholder: point it at your copy of the runbooks/ folder.
    runbook_base_url: str = "https://github.com/your-org/covet-otel/blob/main/runbooks/"
    grafana_url: str = "http://localhost:3000"
    slo: SLOConfig = field(default_factory=SLOConfig)
    alertmanager: AlertmanagerConfig = field(default_factory=AlertmanagerConfig)
    alerts: tuple[AlertDef, ...] = DEFAULT_ALERTS
    # rule-group evaluation interval (the SLO budget rules use slo.budget_interval)
    evaluation_interval: str = "30s"
    # the app-side series whose presence means "this app process is alive and instrumented"
    # (every long-running app reports it; short-lived jobs do not)
    liveness_metric: str = "covet_process_cpu_seconds_total"

    @property
    def enabled_alerts(self) -> tuple[AlertDef, ...]:
        return tuple(a for a in self.alerts if a.enabled)

    def alert(self, name: str) -> AlertDef:
        for a in self.alerts:
            if a.name == name:
                return a
        raise KeyError(f"no alert named {name!r}")

    def alerts_in_group(self, group: str) -> tuple[AlertDef, ...]:
        return tuple(a for a in self.alerts if a.group == group)

    def runbook_url(self, alert: AlertDef) -> str:
        return self.runbook_base_url.rstrip("/") + "/" + alert.runbook_path

    def dashboard_url(self, alert: AlertDef, all_values: bool = False) -> str:
        """Grafana link with the alert's locating labels as dashboard variables (Alertmanager
        template syntax: Prometheus fills {{ $labels.x }} when the alert fires). all_values: every
        variable on All instead, for a runbook, which is read without the alert's labels at hand."""
        url = f"{self.grafana_url.rstrip('/')}/d/{alert.dashboard_uid}"
        if all_values:
            params = [f"var-{label}=$__all" for label in alert.link_vars]
        else:
            params = [f"var-{label}={{{{ $labels.{label} | urlquery }}}}" for label in alert.link_vars]
        if alert.panel_id is not None:
            params.append(f"viewPanel={alert.panel_id}")
        return url + ("?" + "&".join(params) if params else "")


# ── loading overrides ───────────────────────────────────────────────────────────────────────────


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_scalar(key: str, value: Any, expected: type) -> Any:
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {_type_name(value)} {value!r}")
        return float(value)
    if expected is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {_type_name(value)} {value!r}")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {_type_name(value)} {value!r}")
    return value


def _check_duration(key: str, value: Any) -> str:
    value = _check_scalar(key, value, str)
    try:
        duration_seconds(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    return value


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {_type_name(value)} {value!r}")
    return value


def _unknown(key: str, data: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for k in data:
        if k not in known:
            raise ConfigError(f"{key + '.' if key else ''}{k}: unknown key (known: {', '.join(known)})")


def _override_flat(obj: Any, data: Mapping[str, Any], key: str, durations: tuple[str, ...] = ()) -> Any:
    """Override the str/float/bool fields of a dataclass from a mapping."""
    fields = {f.name: f for f in dataclasses.fields(obj)}
    scalar = {n: getattr(obj, n) for n in fields if isinstance(getattr(obj, n), (str, float, bool))}
    _unknown(key, data, tuple(scalar))
    changes: dict[str, Any] = {}
    for k, v in data.items():
        if k in durations:
            changes[k] = _check_duration(f"{key}.{k}", v)
        else:
            changes[k] = _check_scalar(f"{key}.{k}", v, type(scalar[k]))
    return dataclasses.replace(obj, **changes)


def _override_alert(alert: AlertDef, data: Mapping[str, Any], key: str) -> AlertDef:
    _unknown(key, data, ("severity", "team", "for", "window", "thresholds", "enabled", "dashboard_uid"))
    changes: dict[str, Any] = {}
    if "severity" in data:
        sev = _check_scalar(f"{key}.severity", data["severity"], str)
        if sev not in SEVERITIES:
            raise ConfigError(f"{key}.severity: {sev!r} is not one of {', '.join(SEVERITIES)}")
        changes["severity"] = sev
    if "team" in data:
        team = _check_scalar(f"{key}.team", data["team"], str)
        if not re.match(r"^[a-z][a-z0-9_-]*$", team):
            raise ConfigError(f"{key}.team: {team!r} must be a lower-case identifier")
        changes["team"] = team
    if "for" in data:
        changes["for_"] = _check_duration(f"{key}.for", data["for"])
    if "window" in data:
        if not alert.window:
            raise ConfigError(f"{key}.window: {alert.name} has no window to override")
        changes["window"] = _check_duration(f"{key}.window", data["window"])
    if "enabled" in data:
        changes["enabled"] = _check_scalar(f"{key}.enabled", data["enabled"], bool)
    if "dashboard_uid" in data:
        changes["dashboard_uid"] = _check_scalar(f"{key}.dashboard_uid", data["dashboard_uid"], str)
    if "thresholds" in data:
        given = _mapping(f"{key}.thresholds", data["thresholds"])
        names = tuple(t.name for t in alert.thresholds)
        _unknown(f"{key}.thresholds", given, names)
        changes["thresholds"] = tuple(
            dataclasses.replace(t, value=_check_scalar(f"{key}.thresholds.{t.name}", given[t.name], float))
            if t.name in given
            else t
            for t in alert.thresholds
        )
    return dataclasses.replace(alert, **changes)


def _override_slo(slo: SLOConfig, data: Mapping[str, Any]) -> SLOConfig:
    data = dict(data)
    burn = data.pop("burn_rates", None)
    slo = _override_flat(slo, data, "slo", durations=("window", "budget_interval"))
    for name in ("availability_target", "latency_target"):
        if not 0 < getattr(slo, name) < 1:
            raise ConfigError(f"slo.{name}: must be between 0 and 1 (e.g. 0.999), got {getattr(slo, name)}")
    from covet_otel.catalogue import get

    buckets = get("covet_http_request_duration_seconds").buckets or ()
    if slo.latency_threshold_seconds not in buckets:
        raise ConfigError(
            f"slo.latency_threshold_seconds: {slo.latency_threshold_seconds} is not a bucket boundary of "
            f"covet_http_request_duration_seconds ({', '.join(f'{b:g}' for b in buckets)})"
        )
    if burn is not None:
        if not isinstance(burn, list) or not burn:
            raise ConfigError("slo.burn_rates: expected a non-empty list")
        rows = []
        for i, row in enumerate(burn):
            key = f"slo.burn_rates[{i}]"
            row = _mapping(key, row)
            _unknown(key, row, ("long_window", "short_window", "factor", "severity"))
            missing = [k for k in ("long_window", "short_window", "factor", "severity") if k not in row]
            if missing:
                raise ConfigError(f"{key}: missing {', '.join(missing)}")
            sev = _check_scalar(f"{key}.severity", row["severity"], str)
            if sev not in ("critical", "medium"):
                raise ConfigError(f"{key}.severity: 'critical' (fast burn, page) or 'medium' (slow, ticket)")
            rows.append(
                BurnRate(
                    _check_duration(f"{key}.long_window", row["long_window"]),
                    _check_duration(f"{key}.short_window", row["short_window"]),
                    _check_scalar(f"{key}.factor", row["factor"], float),
                    sev,  # type: ignore[arg-type]
                )
            )
        slo = dataclasses.replace(slo, burn_rates=tuple(rows))
    return slo


def apply_overrides(config: MixinConfig, data: Mapping[str, Any]) -> MixinConfig:
    """A new config with `data` (the parsed YAML of an override file) applied."""
    data = _mapping("(top level)", data)
    top = (
        "selectors",
        "runbook_base_url",
        "grafana_url",
        "slo",
        "alertmanager",
        "alerts",
        "evaluation_interval",
    )
    _unknown("", data, top)
    changes: dict[str, Any] = {}
    for k in ("runbook_base_url", "grafana_url"):
        if k in data:
            changes[k] = _check_scalar(k, data[k], str)
    if "evaluation_interval" in data:
        changes["evaluation_interval"] = _check_duration("evaluation_interval", data["evaluation_interval"])
    if "selectors" in data:
        selectors = _mapping("selectors", data["selectors"])
        changes["selectors"] = _override_flat(config.selectors, selectors, "selectors")
    if "slo" in data:
        changes["slo"] = _override_slo(config.slo, _mapping("slo", data["slo"]))
    if "alertmanager" in data:
        am = _mapping("alertmanager", data["alertmanager"])
        durations = tuple(
            f.name for f in dataclasses.fields(AlertmanagerConfig) if f.name.endswith("_interval")
        )
        durations += tuple(f.name for f in dataclasses.fields(AlertmanagerConfig) if f.name.endswith("_wait"))
        changes["alertmanager"] = _override_flat(config.alertmanager, am, "alertmanager", durations)
    if "alerts" in data:
        given = _mapping("alerts", data["alerts"])
        names = tuple(a.name for a in config.alerts)
        _unknown("alerts", given, names)
        changes["alerts"] = tuple(
            _override_alert(a, _mapping(f"alerts.{a.name}", given[a.name]), f"alerts.{a.name}")
            if a.name in given
            else a
            for a in config.alerts
        )
    return dataclasses.replace(config, **changes)


def load_config(path: Path | None = None, *extra: Path) -> MixinConfig:
    """The defaults, with the override files applied in order (later files win)."""
    config = MixinConfig()
    for p in (path, *extra):
        if p is None:
            continue
        try:
            data = yaml.safe_load(Path(p).read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from None
        if data is None:
            continue
        try:
            config = apply_overrides(config, data)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None
    return config
