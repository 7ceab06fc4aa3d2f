"""The dashboards the CovetPy pack lacked: overview (home), HTTP by route, SLO and error budget,
the PostgreSQL and Redis servers (collector-side metrics) and the collector's own pipeline."""

from __future__ import annotations

from typing import Any

from ..config import DASHBOARD_UIDS
from ._kit import GREEN, ORANGE, RED, YELLOW, Kit, PanelSpec, Query, Var
from .pack import HEALTH_MAPPINGS, HEALTH_STEPS

STATUS_5XX = 'status_code=~"5.."'
CHECK = 'check=~"$check"'
UP_MAPPINGS = {"1": ("up", GREEN), "0": ("down", RED)}
UP_STEPS = ((None, RED), (1, GREEN))

TITLES = {
    "covetpy-db-pool": "Database connection pool",
    "covetpy-query-perf": "Query performance",
    "covetpy-security": "Security",
    "covetpy-system": "System",
    "covetpy-cache": "Cache",
    "covetpy-business": "Business",
    "covetpy-backup": "Backup",
    "covetpy-migrations": "Migrations",
    "covet-overview": "Overview",
    "covet-http": "HTTP by route",
    "covet-slo": "SLO and error budget",
    "covet-postgresql": "PostgreSQL server",
    "covet-redis": "Redis server",
    "covet-collector": "Collector pipeline",
}


def _error_ratio(k: Kit, by: str, *extra: str) -> str:
    """5xx responses / responses per `by`; 0 (not absent) for groups that had no 5xx."""
    total = f"sum by ({by}) ({k.rate('covet_http_requests_total', *extra)})"
    errors = f"sum by ({by}) ({k.rate('covet_http_requests_total', *extra, STATUS_5XX)})"
    return f"({errors} or 0 * {total}) / {total}"


def overview(k: Kit) -> dict[str, Any]:
    live = k.config.liveness_metric
    panels = [
        PanelSpec(
            "stat",
            "Processes reporting",
            f"Processes of each job whose {live} arrived in the last scrape. Good: the number of "
            "processes you run; a job that drops to none fires ServiceDown.",
            [Query(f"count by (job) ({live}{k.sel()})", "{{job}}")],
            "short",
            width=6,
            steps=((None, RED), (1, GREEN)),
            alert="ServiceDown",
            more_alerts=["CovetMetricsAbsent"],
        ),
        PanelSpec(
            "stat",
            "Firing alerts by severity",
            "Count of ALERTS{alertstate=firing} by severity (Watchdog always fires: it proves the "
            "alerting path works). Good: Watchdog only.",
            [Query('count by (severity) (ALERTS{alertstate="firing"})', "{{severity}}", instant=True)],
            "short",
            width=6,
            steps=((None, GREEN), (2, ORANGE)),
            more_alerts=["Watchdog"],
        ),
        PanelSpec(
            "stat",
            "Health checks",
            "covet_health_check_status, the worst process per check: 1 pass, 0.5 warn, 0 fail. "
            "Good: every check passes.",
            [Query(f"min by (check) (covet_health_check_status{k.sel(CHECK)})", "{{check}}")],
            "none",
            width=12,
            max=1,
            steps=HEALTH_STEPS,
            mappings=HEALTH_MAPPINGS,
            alert="HealthCheckFailing",
            more_alerts=["HealthCheckDegraded"],
        ),
        PanelSpec(
            "timeseries",
            "Requests per second by job",
            "Rate of covet_http_requests_total per job (RED: rate). Good: your usual traffic shape.",
            [Query(f"sum by (job) ({k.rate('covet_http_requests_total')})", "{{job}}")],
            "reqps",
            width=8,
        ),
        PanelSpec(
            "timeseries",
            "5xx error ratio by job",
            "5xx responses / responses of covet_http_requests_total per job (RED: errors). Good: "
            "near 0, under the HighHTTPErrorRate line.",
            [Query(_error_ratio(k, "job"), "{{job}}")],
            "percentunit",
            width=8,
            max=1,
            alert="HighHTTPErrorRate",
        ),
        PanelSpec(
            "timeseries",
            "Request latency p95 by job",
            "95th percentile of covet_http_request_duration_seconds per job (RED: duration). "
            "Good: under the HighHTTPLatency line.",
            [Query(k.quantile(0.95, "covet_http_request_duration_seconds", "job"), "{{job}}")],
            "s",
            width=8,
            alert="HighHTTPLatency",
        ),
        PanelSpec(
            "timeseries",
            "Database pool utilisation by job",
            "covet_db_connections_active / covet_db_pool_max_size, the busiest pool and process "
            "per job (saturation). Good: well under 100 %.",
            [
                Query(
                    f"max by (job) (covet_db_connections_active{k.sel()} / covet_db_pool_max_size{k.sel()})",
                    "{{job}}",
                )
            ],
            "percentunit",
            width=8,
            max=1,
            alert="DatabaseConnectionPoolExhausted",
        ),
        PanelSpec(
            "timeseries",
            "Host CPU by job",
            "covet_system_cpu_usage_percent, the busiest host per job (saturation). Good: under "
            "the HighCPUUsage line.",
            [Query(f"max by (job) (covet_system_cpu_usage_percent{k.sel()})", "{{job}}")],
            "percent",
            width=8,
            max=100,
            alert="HighCPUUsage",
        ),
        PanelSpec(
            "timeseries",
            "Host memory used by job",
            "covet_system_memory_usage_bytes / covet_system_memory_total_bytes, the fullest host "
            "per job (saturation). Good: under the HighMemoryUsage line.",
            [
                Query(
                    f"max by (job) (100 * covet_system_memory_usage_bytes{k.sel()}"
                    f" / covet_system_memory_total_bytes{k.sel()})",
                    "{{job}}",
                )
            ],
            "percent",
            width=8,
            max=100,
            alert="HighMemoryUsage",
        ),
        PanelSpec(
            "table",
            "Firing alerts",
            "ALERTS{alertstate=firing}: every alert firing now, with its severity, team and where "
            "it fires. Open the alert's dashboard from the list of covet dashboards above.",
            [
                Query(
                    'sum by (alertname, severity, team, job, instance) (ALERTS{alertstate="firing"})',
                    "{{alertname}}",
                    instant=True,
                )
            ],
            "none",
            width=24,
            min=None,
        ),
    ]
    return k.dashboard(
        uid="covet-overview",
        title="Covet / Overview",
        description="Home: rate, errors, duration and saturation per service, health, firing alerts, "
        "and links to every covet dashboard.",
        groups=["http", "health", "meta", "slo"],
        probe=live,
        source=k.config.selectors.app,
        variables=[Var("check", "check", "covet_health_check_status", "Health check name")],
        panels=panels,
        extra_links=[(TITLES[uid], uid) for uid in DASHBOARD_UIDS if uid != "covet-overview"],
    )


def http(k: Kit) -> dict[str, Any]:
    r = 'route=~"$route"'
    panels = [
        PanelSpec(
            "timeseries",
            "Requests per second by route",
            "Rate of covet_http_requests_total by route template. Good: your usual traffic shape.",
            [Query(f"sum by (route) ({k.rate('covet_http_requests_total', r)})", "{{route}}")],
            "reqps",
        ),
        PanelSpec(
            "timeseries",
            "5xx error ratio by route",
            "5xx responses / responses of covet_http_requests_total per route. Good: near 0, "
            "under the HighHTTPErrorRate line (routes with little traffic do not alert).",
            [Query(_error_ratio(k, "route", r), "{{route}}")],
            "percentunit",
            max=1,
            alert="HighHTTPErrorRate",
        ),
        PanelSpec(
            "timeseries",
            "Request latency p95 by route",
            "95th percentile of covet_http_request_duration_seconds per route. Good: under the "
            "HighHTTPLatency line.",
            [Query(k.quantile(0.95, "covet_http_request_duration_seconds", "route", r), "{{route}}")],
            "s",
            alert="HighHTTPLatency",
        ),
        PanelSpec(
            "timeseries",
            "Responses per second by status code",
            "Rate of covet_http_requests_total by status code. Good: 2xx and 3xx; 4xx are client "
            "mistakes, 5xx are ours.",
            [Query(f"sum by (status_code) ({k.rate('covet_http_requests_total', r)})", "{{status_code}}")],
            "reqps",
            stack=True,
        ),
        PanelSpec(
            "timeseries",
            "Requests in flight by method",
            "covet_http_requests_in_flight summed over processes. Good: small and steady; growth "
            "means requests wait on something (pool, upstream).",
            [Query(f"sum by (method) (covet_http_requests_in_flight{k.sel()})", "{{method}}")],
            "short",
        ),
        PanelSpec(
            "timeseries",
            "Unhandled exceptions per second by route",
            "Rate of covet_http_exceptions_total: exceptions that escaped the handler. Good: 0.",
            [Query(f"sum by (route) ({k.rate('covet_http_exceptions_total', r)})", "{{route}}")],
            "ops",
        ),
        PanelSpec(
            "timeseries",
            "Response size p95 by route",
            "95th percentile of covet_http_response_body_size_bytes per route. Good: stable; a "
            "jump is an unpaginated list or a missing filter.",
            [Query(k.quantile(0.95, "covet_http_response_body_size_bytes", "route", r), "{{route}}")],
            "bytes",
        ),
        PanelSpec(
            "timeseries",
            "Request size p95 by route",
            "95th percentile of covet_http_request_body_size_bytes per route (requests with a "
            "body). Good: stable.",
            [Query(k.quantile(0.95, "covet_http_request_body_size_bytes", "route", r), "{{route}}")],
            "bytes",
        ),
    ]
    return k.dashboard(
        uid="covet-http",
        title="Covet / HTTP by route",
        description="Rate, errors and duration of every route template; sizes, in-flight, exceptions.",
        groups=["http"],
        probe="covet_http_requests_total",
        source=k.config.selectors.app,
        variables=[Var("route", "route", "covet_http_requests_total", "Route template (never the raw path)")],
        panels=panels,
    )


def slo(k: Kit) -> dict[str, Any]:
    s = k.config.slo
    j = k.sel_job()
    shortest = s.windows[0]
    short_window = f'window="{shortest}"'
    factors = sorted({b.factor for b in s.burn_rates})
    burn_steps = [(None, GREEN)] + [(f, c) for f, c in zip(factors, [YELLOW, ORANGE, RED, RED, RED, RED])]
    budget_steps = ((None, RED), (0, ORANGE), (0.25, GREEN))

    def budget(kind: str, target: float) -> PanelSpec:
        return PanelSpec(
            "stat",
            f"{kind.capitalize()} error budget left ({s.window})",
            f"covet_slo_http_{kind}_budget_remaining_ratio: share of the {kind} error budget "
            f"({(1 - target) * 100:g} % of requests over {s.window}) left. Good: above 0; "
            "negative means the SLO is missed.",
            [Query(f"covet_slo_http_{kind}_budget_remaining_ratio{j}", "{{job}}")],
            "percentunit",
            width=12,
            min=None,
            steps=budget_steps,
        )

    def burn(kind: str, target: float) -> PanelSpec:
        name = "Availability" if kind == "availability" else "Latency"
        return PanelSpec(
            "timeseries",
            f"{name} burn rate by window",
            f"covet_slo_http_{kind}_error_ratio / (1 - {target:g}) for each window of the burn-rate "
            "table: 1 spends the budget exactly over the SLO window. Good: under 1. The lines are "
            f"the factors of the burn-rate alerts ({', '.join(f'{f:g}' for f in factors)}).",
            [Query(f"covet_slo_http_{kind}_error_ratio{j} / (1 - {target:g})", "{{job}} {{window}}")],
            "short",
            width=12,
            steps=burn_steps,
            alert=f"HTTP{name}BudgetBurnFast",
            more_alerts=[f"HTTP{name}BudgetBurnSlow"],
        )

    def sli(kind: str, target: float, what: str) -> PanelSpec:
        return PanelSpec(
            "timeseries",
            f"{kind.capitalize()} SLI ({shortest})",
            f"1 - covet_slo_http_{kind}_error_ratio over {shortest}: {what}. Good: above the "
            f"target line ({target * 100:g} %).",
            [Query(f"1 - covet_slo_http_{kind}_error_ratio{k.sel_job(short_window)}", "{{job}}")],
            "percentunit",
            width=12,
            min=None,
            max=1,
            steps=((None, RED), (target, GREEN)),
        )

    panels = [
        budget("availability", s.availability_target),
        budget("latency", s.latency_target),
        burn("availability", s.availability_target),
        burn("latency", s.latency_target),
        sli("availability", s.availability_target, "share of requests answered without a 5xx"),
        sli(
            "latency",
            s.latency_target,
            f"share of requests answered within {s.latency_threshold_seconds:g} s",
        ),
    ]
    return k.dashboard(
        uid="covet-slo",
        title="Covet / SLO and error budget",
        description=f"HTTP availability ({s.availability_target * 100:g} %) and latency "
        f"({s.latency_target * 100:g} % under {s.latency_threshold_seconds:g} s) SLOs over {s.window}: "
        "budget left and multi-window burn rates.",
        groups=["slo"],
        probe="covet_http_requests_total",
        source=k.config.selectors.app,
        panels=panels,
        time_from="now-24h",
        refresh="1m",
        extra_links=[("HTTP by route", "covet-http")],
    )


def postgresql(k: Kit) -> dict[str, Any]:
    d = 'database=~"$database"'
    panels = [
        PanelSpec(
            "stat",
            "Server up",
            "covet_postgresql_up: 1 when postgres_exporter reaches the server. Good: up.",
            [Query(f"min by (instance) (covet_postgresql_up{k.sel()})", "{{instance}}")],
            "none",
            width=6,
            max=1,
            steps=UP_STEPS,
            mappings=UP_MAPPINGS,
            alert="PostgreSQLDown",
        ),
        PanelSpec(
            "timeseries",
            "Connections used of max_connections",
            "covet_postgresql_connections (selected databases, every state) / "
            "covet_postgresql_connections_max. Good: under the PostgreSQLTooManyConnections line.",
            [
                Query(
                    f"sum by (instance) (covet_postgresql_connections{k.sel(d)})"
                    f" / max by (instance) (covet_postgresql_connections_max{k.sel()})",
                    "{{instance}}",
                )
            ],
            "percentunit",
            width=18,
            max=1,
            alert="PostgreSQLTooManyConnections",
        ),
        PanelSpec(
            "timeseries",
            "Connections by state",
            "covet_postgresql_connections by state. Good: mostly idle and active; many 'idle in "
            "transaction' hold locks and snapshots.",
            [Query(f"sum by (state) (covet_postgresql_connections{k.sel(d)})", "{{state}}")],
            "short",
            stack=True,
        ),
        PanelSpec(
            "timeseries",
            "Commits and rollbacks per second",
            "Rates of covet_postgresql_commits_total and covet_postgresql_rollbacks_total by "
            "database. Good: rollbacks a small share.",
            [
                Query(
                    f"sum by (database) ({k.rate('covet_postgresql_commits_total', d)})",
                    "{{database}} commits",
                ),
                Query(
                    f"sum by (database) ({k.rate('covet_postgresql_rollbacks_total', d)})",
                    "{{database}} rollbacks",
                ),
            ],
            "ops",
        ),
        PanelSpec(
            "timeseries",
            "Buffer cache hit ratio",
            "covet_postgresql_cache_hit_ratio (recording rule: blocks hit / blocks hit or read, 5 "
            "minutes). Good: above the PostgreSQLLowCacheHitRatio line (about 99 % for OLTP).",
            [Query(f"covet_postgresql_cache_hit_ratio{k.sel(d)}", "{{database}}")],
            "percentunit",
            min=None,
            max=1,
            alert="PostgreSQLLowCacheHitRatio",
            below=True,
        ),
        PanelSpec(
            "timeseries",
            "Deadlocks",
            "Increase of covet_postgresql_deadlocks_total per interval by database. Good: 0.",
            [
                Query(
                    f"sum by (database) ({k.rate('covet_postgresql_deadlocks_total', d, fn='increase')})",
                    "{{database}}",
                )
            ],
            "short",
            alert="PostgreSQLDeadlocks",
        ),
        PanelSpec(
            "timeseries",
            "Oldest transaction age",
            "covet_postgresql_oldest_transaction_age_seconds by database. Good: seconds; long "
            "transactions hold locks and block vacuum.",
            [
                Query(
                    f"max by (database) (covet_postgresql_oldest_transaction_age_seconds{k.sel(d)})",
                    "{{database}}",
                )
            ],
            "s",
            alert="PostgreSQLLongRunningTransaction",
        ),
        PanelSpec(
            "timeseries",
            "Transaction ID age",
            "covet_postgresql_xid_age (age of datfrozenxid) by database. Good: far below the "
            "PostgreSQLTransactionIDWraparound line (wraparound at 2^31).",
            [Query(f"max by (database) (covet_postgresql_xid_age{k.sel(d)})", "{{database}}")],
            "short",
            alert="PostgreSQLTransactionIDWraparound",
        ),
        PanelSpec(
            "timeseries",
            "Replication lag",
            "covet_postgresql_replication_lag_seconds (0 on a primary). Good: under the "
            "PostgreSQLReplicationLag line.",
            [Query(f"max by (instance) (covet_postgresql_replication_lag_seconds{k.sel()})", "{{instance}}")],
            "s",
            alert="PostgreSQLReplicationLag",
        ),
        PanelSpec(
            "timeseries",
            "Locks by mode",
            "covet_postgresql_locks by lock mode. Good: no lasting AccessExclusiveLock (DDL, "
            "migrations) while traffic runs.",
            [Query(f"sum by (mode) (covet_postgresql_locks{k.sel(d)})", "{{mode}}")],
            "short",
        ),
        PanelSpec(
            "timeseries",
            "Database size",
            "covet_postgresql_db_size_bytes by database. Good: growth you planned for.",
            [Query(f"max by (database) (covet_postgresql_db_size_bytes{k.sel(d)})", "{{database}}")],
            "bytes",
            width=24,
        ),
    ]
    return k.dashboard(
        uid="covet-postgresql",
        title="Covet / PostgreSQL server",
        description="The PostgreSQL server through postgres_exporter and the collector: availability, "
        "connections, transactions, cache, locks, vacuum horizon, replication.",
        groups=["database"],
        probe="covet_postgresql_up",
        source=k.config.selectors.postgresql,
        variables=[Var("database", "database", "covet_postgresql_backends", "Database")],
        panels=panels,
        extra_links=[
            ("Database connection pool", "covetpy-db-pool"),
            ("Query performance", "covetpy-query-perf"),
        ],
    )


def redis(k: Kit) -> dict[str, Any]:
    panels = [
        PanelSpec(
            "timeseries",
            "Memory used of maxmemory",
            "covet_cache_memory_usage_bytes / covet_cache_memory_max_bytes (absent when maxmemory "
            "is 0, i.e. unlimited). Good: under the RedisMemoryHigh line.",
            [
                Query(
                    f"covet_cache_memory_usage_bytes{k.sel()} / (covet_cache_memory_max_bytes{k.sel()} > 0)",
                    "{{instance}}",
                )
            ],
            "percentunit",
            max=1,
            alert="RedisMemoryHigh",
            no_value="no maxmemory set",
        ),
        PanelSpec(
            "timeseries",
            "Memory used",
            "covet_cache_memory_usage_bytes and covet_cache_memory_max_bytes (0 = no limit). "
            "Good: stable, with room below maxmemory.",
            [
                Query(f"max by (instance) (covet_cache_memory_usage_bytes{k.sel()})", "{{instance}} used"),
                Query(f"max by (instance) (covet_cache_memory_max_bytes{k.sel()})", "{{instance}} maxmemory"),
            ],
            "bytes",
        ),
        PanelSpec(
            "timeseries",
            "Connected clients",
            "covet_redis_clients_connected. Good: the pools of your processes; growth without "
            "traffic is a connection leak.",
            [Query(f"max by (instance) (covet_redis_clients_connected{k.sel()})", "{{instance}}")],
            "short",
        ),
        PanelSpec(
            "timeseries",
            "Evicted keys per second",
            "Rate of covet_redis_keys_evicted_total. Good: 0 for a store, low for a cache at maxmemory.",
            [Query(f"sum by (instance) ({k.rate('covet_redis_keys_evicted_total')})", "{{instance}}")],
            "ops",
        ),
        PanelSpec(
            "timeseries",
            "Rejected connections",
            "Increase of covet_redis_connections_rejected_total per interval (maxclients reached). Good: 0.",
            [
                Query(
                    f"sum by (instance) ({k.rate('covet_redis_connections_rejected_total', fn='increase')})",
                    "{{instance}}",
                )
            ],
            "short",
            width=24,
            alert="RedisRejectedConnections",
        ),
    ]
    return k.dashboard(
        uid="covet-redis",
        title="Covet / Redis server",
        description="The Redis server through the collector's redis receiver: memory, clients, "
        "evictions, rejected connections.",
        groups=["cache"],
        probe="covet_redis_clients_connected",
        source=k.config.selectors.redis,
        panels=panels,
        extra_links=[("Cache (application side)", "covetpy-cache")],
    )


def collector(k: Kit) -> dict[str, Any]:
    rv = 'receiver=~"$receiver"'
    ex = 'exporter=~"$exporter"'
    accepted = "otelcol_receiver_accepted_metric_points_total"
    sent = "otelcol_exporter_sent_metric_points_total"
    send_failed = "otelcol_exporter_send_failed_metric_points_total"
    panels = [
        PanelSpec(
            "stat",
            "Scrape targets up",
            "up of the collector's scrape jobs (exporter :8889 with every covet_* series, own "
            "telemetry :8888). Good: up.",
            [Query(f"min by (job, instance) (up{k.sel()})", "{{job}} {{instance}}")],
            "none",
            width=24,
            height=5,
            max=1,
            steps=UP_STEPS,
            mappings=UP_MAPPINGS,
            alert="CollectorDown",
        ),
        PanelSpec(
            "timeseries",
            "Points accepted per second by receiver",
            f"Rate of {accepted}: data points into each pipeline (otlp from apps, redis, "
            "host_metrics, prometheus for postgres_exporter). Good: steady.",
            [Query(f"sum by (receiver) ({k.rate(accepted, rv)})", "{{receiver}}")],
            "ops",
        ),
        PanelSpec(
            "timeseries",
            "Points refused per second by receiver",
            "Rate of otelcol_receiver_refused_metric_points_total: points the memory_limiter "
            "refused. Good: 0.",
            [
                Query(
                    k.or_zero(
                        f"sum by (receiver) ({k.rate('otelcol_receiver_refused_metric_points_total', rv)})",
                        "receiver",
                        f"{accepted}{k.sel(rv)}",
                    ),
                    "{{receiver}}",
                )
            ],
            "ops",
            alert="CollectorRefusingPoints",
        ),
        PanelSpec(
            "timeseries",
            "Points sent per second by exporter",
            f"Rate of {sent}. Good: close to the points accepted.",
            [Query(f"sum by (exporter) ({k.rate(sent, ex)})", "{{exporter}}")],
            "ops",
        ),
        PanelSpec(
            "timeseries",
            "Export failures per second by exporter",
            "Rate of otelcol_exporter_send_failed_metric_points_total. Good: 0.",
            [
                Query(
                    k.or_zero(
                        f"sum by (exporter) ({k.rate(send_failed, ex)})",
                        "exporter",
                        f"{sent}{k.sel(ex)}",
                    ),
                    "{{exporter}}",
                )
            ],
            "ops",
            alert="CollectorExportFailures",
        ),
        PanelSpec(
            "timeseries",
            "Collector memory (RSS)",
            "otelcol_process_memory_rss_bytes. Good: well under the memory_limiter limit "
            "(COVET_COLLECTOR_MEMORY_LIMIT_MIB, 512 MiB by default).",
            [Query(f"max by (instance) (otelcol_process_memory_rss_bytes{k.sel()})", "{{instance}}")],
            "bytes",
        ),
        PanelSpec(
            "timeseries",
            "Collector CPU",
            "Rate of otelcol_process_cpu_seconds_total: 1 = one core busy. Good: a small share of a core.",
            [Query(f"sum by (instance) ({k.rate('otelcol_process_cpu_seconds_total')})", "{{instance}}")],
            "percentunit",
            width=24,
        ),
    ]
    return k.dashboard(
        uid="covet-collector",
        title="Covet / Collector pipeline",
        description="The OpenTelemetry collector's own telemetry: points in and out, refusals, export "
        "failures, resources.",
        groups=["collector"],
        probe="up",
        source=k.config.selectors.collector,
        variables=[
            Var(
                "receiver", "receiver", accepted, "Collector receiver (otlp, redis, host_metrics, prometheus)"
            ),
            Var("exporter", "exporter", sent, "Collector exporter"),
        ],
        panels=panels,
    )
