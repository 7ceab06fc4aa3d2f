"""The CovetPy pack's eight dashboards, same UIDs and at least the same panel counts, on the
catalogue's metrics. Every panel says in its description which metric it reads and what good
looks like; panels behind an alert draw that alert's limits and link its runbook."""

from __future__ import annotations

from typing import Any

from ._kit import GREEN, RED, YELLOW, Kit, PanelSpec, Query, Var

HEALTH_MAPPINGS = {"1": ("pass", GREEN), "0.5": ("warn", YELLOW), "0": ("fail", RED)}
# fail (0) is HealthCheckFailing's limit: a step of its own so the panel draws the definition
HEALTH_STEPS = ((None, RED), (0, RED), (0.5, YELLOW), (1, GREEN))
FAILURE = 'outcome="failure"'
CONNECTION_ERRORS = 'error_type=~"connection|timeout"'
MIGRATION_SERIES = "covet_migration_pending|covet_migration_runs_total"


def db_pool(k: Kit) -> dict[str, Any]:
    p = 'pool=~"$pool"'
    basis = f"covet_db_pool_size{k.sel(p)}"
    panels = [
        PanelSpec(
            "stat",
            "Pool utilisation",
            "covet_db_connections_active / covet_db_pool_max_size, the busiest process per pool. "
            "Good: well under 100 %; at 100 % every connection is in use and acquires queue.",
            [
                Query(
                    f"max by (pool) (covet_db_connections_active{k.sel(p)}"
                    f" / covet_db_pool_max_size{k.sel(p)})",
                    "{{pool}}",
                )
            ],
            "percentunit",
            width=8,
            max=1,
            alert="DatabaseConnectionPoolExhausted",
        ),
        PanelSpec(
            "timeseries",
            "Connections by pool",
            "covet_db_connections_active (in use), covet_db_connections_idle, covet_db_pool_size "
            "and covet_db_pool_max_size summed over the selected processes. Good: in use stays "
            "below max size with idle connections to spare.",
            [
                Query(f"sum by (pool) (covet_db_connections_active{k.sel(p)})", "{{pool}} in use"),
                Query(f"sum by (pool) (covet_db_connections_idle{k.sel(p)})", "{{pool}} idle"),
                Query(f"sum by (pool) (covet_db_pool_size{k.sel(p)})", "{{pool}} open"),
                Query(f"sum by (pool) (covet_db_pool_max_size{k.sel(p)})", "{{pool}} max size"),
            ],
            "short",
            width=16,
        ),
        PanelSpec(
            "timeseries",
            "Acquire wait p95",
            "95th percentile of covet_db_pool_acquire_duration_seconds: how long code waits for a "
            "connection. Good: near zero; a rising wait means the pool is too small or "
            "connections are held too long.",
            [Query(k.quantile(0.95, "covet_db_pool_acquire_duration_seconds", "pool", p), "{{pool}}")],
            "s",
            alert="DatabaseConnectionPoolExhausted",
        ),
        PanelSpec(
            "timeseries",
            "Acquires per second by outcome",
            "Rate of covet_db_pool_acquire_duration_seconds_count by outcome (success, timeout, "
            "error). Good: only success.",
            [
                Query(
                    f"sum by (pool, outcome) ({k.rate('covet_db_pool_acquire_duration_seconds_count', p)})",
                    "{{pool}} {{outcome}}",
                )
            ],
            "ops",
        ),
        PanelSpec(
            "timeseries",
            "Acquire timeouts per second",
            "Rate of covet_db_pool_acquire_timeouts_total: acquires that gave up waiting. Good: 0.",
            [
                Query(
                    k.or_zero(
                        f"sum by (pool) ({k.rate('covet_db_pool_acquire_timeouts_total', p)})", "pool", basis
                    ),
                    "{{pool}}",
                )
            ],
            "ops",
        ),
        PanelSpec(
            "timeseries",
            "Leaked connections",
            "Increase of covet_db_connections_leaked_total per interval (reasons: not_released, "
            "held_too_long). Good: 0; any leak shrinks the pool until it is exhausted.",
            [
                Query(
                    k.or_zero(
                        f"sum by (pool) ({k.rate('covet_db_connections_leaked_total', p, fn='increase')})",
                        "pool",
                        basis,
                    ),
                    "{{pool}}",
                )
            ],
            "short",
            alert="DatabaseConnectionPoolLeaks",
        ),
        PanelSpec(
            "stat",
            "Pool health",
            "covet_db_pool_health_status, the worst process per pool: 1 pass, 0.5 warn, 0 fail. Good: pass.",
            [Query(f"min by (pool) (covet_db_pool_health_status{k.sel(p)})", "{{pool}}")],
            "none",
            width=8,
            max=1,
            steps=HEALTH_STEPS,
            mappings=HEALTH_MAPPINGS,
        ),
        PanelSpec(
            "stat",
            "Pool size limits",
            "covet_db_pool_min_size and covet_db_pool_max_size as configured in each process. "
            "Compare with PostgreSQL max_connections (PostgreSQL server dashboard): the sum over "
            "all processes must fit.",
            [
                Query(f"max by (pool) (covet_db_pool_min_size{k.sel(p)})", "{{pool}} min", instant=True),
                Query(f"max by (pool) (covet_db_pool_max_size{k.sel(p)})", "{{pool}} max", instant=True),
            ],
            "short",
            width=8,
        ),
        PanelSpec(
            "timeseries",
            "Queries per second by pool",
            "Rate of covet_db_query_duration_seconds_count per pool: the load the pool serves. "
            "Good: steady; a drop with rising acquire wait points at the pool, not the traffic.",
            [Query(f"sum by (pool) ({k.rate('covet_db_query_duration_seconds_count', p)})", "{{pool}}")],
            "ops",
            width=8,
        ),
    ]
    return k.dashboard(
        uid="covetpy-db-pool",
        title="Covet / Database connection pool",
        description="asyncpg pools of the selected services: utilisation, waits, timeouts, leaks.",
        groups=["database"],
        probe="covet_db_pool_size",
        source=k.config.selectors.app,
        variables=[
            Var("pool", "pool", "covet_db_pool_size", "asyncpg pool (COVET_DB_POOL_NAME or the pool's name)")
        ],
        panels=panels,
    )


def query_perf(k: Kit) -> dict[str, Any]:
    p = 'pool=~"$pool"'
    count = "covet_db_query_duration_seconds_count"
    errors_in_range = k.rate("covet_db_query_errors_total", p, fn="increase", window="$__range")
    panels = [
        PanelSpec(
            "timeseries",
            "Query latency p95 by operation",
            "95th percentile of covet_db_query_duration_seconds by SQL verb. Good: under the "
            "DatabaseHighQueryLatency line.",
            [Query(k.quantile(0.95, "covet_db_query_duration_seconds", "operation", p), "{{operation}}")],
            "s",
            width=12,
            alert="DatabaseHighQueryLatency",
        ),
        PanelSpec(
            "timeseries",
            "Queries per second by operation and outcome",
            "Rate of covet_db_query_duration_seconds_count by SQL verb and outcome. Good: "
            "outcome=error stays a small fraction.",
            [Query(f"sum by (operation, outcome) ({k.rate(count, p)})", "{{operation}} {{outcome}}")],
            "ops",
            width=12,
        ),
        PanelSpec(
            "timeseries",
            "Query error ratio by pool",
            "covet_db_query_errors_total / covet_db_query_duration_seconds_count per pool. Good: "
            "near 0, under the DatabaseQueryErrors line.",
            [
                Query(
                    "("
                    + k.or_zero(
                        f"sum by (pool) ({k.rate('covet_db_query_errors_total', p)})",
                        "pool",
                        f"{count}{k.sel(p)}",
                    )
                    + f") / sum by (pool) ({k.rate(count, p)})",
                    "{{pool}}",
                )
            ],
            "percentunit",
            width=12,
            max=1,
            alert="DatabaseQueryErrors",
        ),
        PanelSpec(
            "timeseries",
            "Slow queries per second by operation",
            "Rate of covet_db_slow_queries_total (queries slower than COVET_DB_SLOW_QUERY_SECONDS). Good: 0.",
            [Query(f"sum by (operation) ({k.rate('covet_db_slow_queries_total', p)})", "{{operation}}")],
            "ops",
            width=12,
        ),
        PanelSpec(
            "bargauge",
            "Query errors in the range by SQLSTATE class",
            "Increase of covet_db_query_errors_total over the dashboard range by SQLSTATE class "
            "(23 integrity, 40 rollback/deadlock, 42 syntax/access, 53 resources, 57 operator "
            "intervention, 08 connection). Good: none (shows 0).",
            [
                Query(
                    f"sum by (sqlstate_class) ({errors_in_range})"
                    ' or on() label_replace(vector(0), "sqlstate_class", "none", "", "")',
                    "{{sqlstate_class}}",
                    instant=True,
                )
            ],
            "short",
            width=24,
            height=6,
        ),
    ]
    return k.dashboard(
        uid="covetpy-query-perf",
        title="Covet / Query performance",
        description="asyncpg query latency, throughput, errors and slow queries by SQL verb.",
        groups=["database"],
        probe=count,
        source=k.config.selectors.app,
        variables=[Var("pool", "pool", count, "asyncpg pool")],
        panels=panels,
    )


def security(k: Kit) -> dict[str, Any]:
    live = f"{k.config.liveness_metric}{k.sel()}"

    def per_second(metric: str, title: str, by: str, what: str, alert: str) -> PanelSpec:
        total = k.or_zero(f"sum by (job) ({k.rate(metric)})", "job", live)
        return PanelSpec(
            "timeseries",
            title,
            f"Rate of {metric} by {by}, and the total per job. {what}",
            [Query(total, "{{job}} total"), Query(f"sum by ({by}) ({k.rate(metric)})", "{{" + by + "}}")],
            "ops",
            alert=alert,
        )

    panels = [
        per_second(
            "covet_app_auth_failures_total",
            "Authentication failures per second",
            "reason",
            "Good: a low, steady background; a spike is credential stuffing, brute force or a "
            "broken login flow.",
            "AuthenticationFailureSpike",
        ),
        per_second(
            "covet_security_rate_limited_total",
            "Rate-limited requests per second",
            "reason",
            "Good: near 0 for real users; bursts from one reason (ip, user, api_key) show abuse.",
            "SecurityEventsSpike",
        ),
        per_second(
            "covet_security_permission_denied_total",
            "Permission denials per second",
            "reason",
            "Good: near 0; a rise after a deploy is a broken role or policy, otherwise probing.",
            "SecurityEventsSpike",
        ),
        per_second(
            "covet_security_invalid_tokens_total",
            "Invalid tokens per second",
            "token_type",
            "Good: near 0; expired tokens trickle in, bad signatures are forgery attempts.",
            "SecurityEventsSpike",
        ),
    ]
    return k.dashboard(
        uid="covetpy-security",
        title="Covet / Security",
        description="Authentication failures, rate limiting, permission denials and invalid tokens.",
        groups=["security"],
        probe=k.config.liveness_metric,
        source=k.config.selectors.app,
        panels=panels,
    )


def system(k: Kit) -> dict[str, Any]:
    path = 'path=~"$path"'
    panels = [
        PanelSpec(
            "timeseries",
            "Host CPU",
            "covet_system_cpu_usage_percent: host CPU busy as each process sees it. Good: under "
            "the HighCPUUsage line; sustained 100 % means work queues up.",
            [Query(f"max by (instance) (covet_system_cpu_usage_percent{k.sel()})", "{{instance}}")],
            "percent",
            max=100,
            alert="HighCPUUsage",
        ),
        PanelSpec(
            "timeseries",
            "Host memory used",
            "covet_system_memory_usage_bytes / covet_system_memory_total_bytes. Good: under the "
            "HighMemoryUsage line; near 100 % the OOM killer or swapping is close.",
            [
                Query(
                    f"max by (instance) (100 * covet_system_memory_usage_bytes{k.sel()}"
                    f" / covet_system_memory_total_bytes{k.sel()})",
                    "{{instance}}",
                )
            ],
            "percent",
            max=100,
            alert="HighMemoryUsage",
        ),
        PanelSpec(
            "timeseries",
            "Disk used by path",
            "covet_disk_usage_bytes / covet_disk_total_bytes for each watched path "
            "(COVET_DISK_PATHS). Good: under the DiskSpaceLow line with room to grow.",
            [
                Query(
                    f"max by (instance, path) (100 * covet_disk_usage_bytes{k.sel(path)}"
                    f" / covet_disk_total_bytes{k.sel(path)})",
                    "{{instance}} {{path}}",
                )
            ],
            "percent",
            max=100,
            alert="DiskSpaceLow",
        ),
        PanelSpec(
            "timeseries",
            "Load average",
            "covet_system_load_average (1m, 5m, 15m). Good: below the number of CPUs.",
            [
                Query(
                    f"max by (instance, period) (covet_system_load_average{k.sel()})",
                    "{{instance}} {{period}}",
                )
            ],
            "short",
        ),
        PanelSpec(
            "timeseries",
            "Process memory (RSS)",
            "covet_process_memory_rss_bytes of each process. Good: flat after warm-up; steady "
            "growth is a leak.",
            [Query(f"sum by (instance) (covet_process_memory_rss_bytes{k.sel()})", "{{instance}}")],
            "bytes",
        ),
        PanelSpec(
            "timeseries",
            "Process CPU by mode",
            "Rate of covet_process_cpu_seconds_total (user, system): 1 = one core busy. Good: "
            "proportional to traffic.",
            [
                Query(
                    f"sum by (instance, mode) ({k.rate('covet_process_cpu_seconds_total')})",
                    "{{instance}} {{mode}}",
                )
            ],
            "percentunit",
        ),
        PanelSpec(
            "timeseries",
            "File descriptors used",
            "covet_process_open_fds / covet_process_max_fds. Good: far below 100 %; at the limit "
            "new sockets and files fail with EMFILE.",
            [
                Query(
                    f"max by (instance) (covet_process_open_fds{k.sel()} / covet_process_max_fds{k.sel()})",
                    "{{instance}}",
                )
            ],
            "percentunit",
            max=1,
        ),
        PanelSpec(
            "timeseries",
            "Threads and GC collections",
            "covet_process_threads and the rate of covet_process_gc_collections_total by "
            "generation. Good: threads flat; frequent generation-2 collections cost latency.",
            [
                Query(f"sum by (instance) (covet_process_threads{k.sel()})", "{{instance}} threads"),
                Query(
                    f"sum by (instance, generation) ({k.rate('covet_process_gc_collections_total')})",
                    "{{instance}} gen {{generation}}/s",
                ),
            ],
            "short",
        ),
    ]
    return k.dashboard(
        uid="covetpy-system",
        title="Covet / System",
        description="Host CPU, memory, disk and load as the app processes see them; process resources.",
        groups=["system"],
        probe="covet_system_cpu_usage_percent",
        source=k.config.selectors.app,
        variables=[
            Var("path", "path", "covet_disk_usage_bytes", "Watched filesystem path (COVET_DISK_PATHS)")
        ],
        panels=panels,
    )


def cache(k: Kit) -> dict[str, Any]:
    c = 'command=~"$command"'
    count = "covet_cache_operation_duration_seconds_count"
    panels = [
        PanelSpec(
            "timeseries",
            "Cache hit ratio",
            "covet_cache_hit_ratio (recording rule: hits / (hits + misses) over 5 minutes, per "
            "job). Good: above the CacheLowHitRatio line.",
            [Query(f"covet_cache_hit_ratio{k.sel_job()}", "{{job}}")],
            "percentunit",
            max=1,
            alert="CacheLowHitRatio",
            below=True,
        ),
        PanelSpec(
            "timeseries",
            "Cache connection error ratio",
            "covet_cache_errors_total (error_type connection or timeout) / cache calls "
            "(covet_cache_operation_duration_seconds_count). Good: 0; the app cannot reach Redis.",
            [
                Query(
                    "("
                    + k.or_zero(
                        f"sum by (job) ({k.rate('covet_cache_errors_total', c, CONNECTION_ERRORS)})",
                        "job",
                        f"{count}{k.sel(c)}",
                    )
                    + f") / sum by (job) ({k.rate(count, c)})",
                    "{{job}}",
                )
            ],
            "percentunit",
            max=1,
            alert="CacheConnectionErrors",
        ),
        PanelSpec(
            "timeseries",
            "Operations per second by command",
            "Rate of covet_cache_operation_duration_seconds_count by Redis command and outcome. "
            "Good: outcome=error absent.",
            [Query(f"sum by (command, outcome) ({k.rate(count, c)})", "{{command}} {{outcome}}")],
            "ops",
        ),
        PanelSpec(
            "timeseries",
            "Latency p95 by command",
            "95th percentile of covet_cache_operation_duration_seconds by command. Good: around "
            "a millisecond on a local network.",
            [Query(k.quantile(0.95, "covet_cache_operation_duration_seconds", "command", c), "{{command}}")],
            "s",
        ),
        PanelSpec(
            "timeseries",
            "Hits and misses per second",
            "Rates of covet_cache_hits_total and covet_cache_misses_total by command. Good: hits dominate.",
            [
                Query(f"sum by (command) ({k.rate('covet_cache_hits_total', c)})", "{{command}} hits"),
                Query(f"sum by (command) ({k.rate('covet_cache_misses_total', c)})", "{{command}} misses"),
            ],
            "ops",
        ),
        PanelSpec(
            "timeseries",
            "Errors per second by type",
            "Rate of covet_cache_errors_total by command and error type (connection, timeout, "
            "response). Good: 0.",
            [
                Query(
                    k.or_zero(
                        f"sum by (command, error_type) ({k.rate('covet_cache_errors_total', c)})",
                        "command",
                        f"{count}{k.sel(c)}",
                    ),
                    "{{command}} {{error_type}}",
                )
            ],
            "ops",
        ),
    ]
    return k.dashboard(
        uid="covetpy-cache",
        title="Covet / Cache",
        description="Redis as the application sees it: hit ratio, errors, latency by command.",
        groups=["cache"],
        probe=count,
        source=k.config.selectors.app,
        variables=[Var("command", "command", count, "Redis command name")],
        panels=panels,
        extra_links=[("Redis server", "covet-redis")],
    )


def business(k: Kit) -> dict[str, Any]:
    e = 'event=~"$event"'
    events_in_range = k.rate("covet_business_events_total", e, fn="increase", window="$__range")
    value_in_range = k.rate("covet_business_value_total", e, fn="increase", window="$__range")
    panels = [
        PanelSpec(
            "timeseries",
            "Business events per second",
            "Rate of covet_business_events_total by event. Good: follows the usual daily shape; a "
            "flat zero where there was traffic is BusinessEventsStopped.",
            [Query(f"sum by (event) ({k.rate('covet_business_events_total', e)})", "{{event}}")],
            "ops",
            alert="BusinessEventsStopped",
        ),
        PanelSpec(
            "bargauge",
            "Events in the range",
            "Increase of covet_business_events_total over the dashboard range, by event.",
            [
                Query(
                    f"sum by (event) ({events_in_range})",
                    "{{event}}",
                    instant=True,
                )
            ],
            "short",
        ),
        PanelSpec(
            "timeseries",
            "Value per second by currency",
            "Rate of covet_business_value_total by event and currency (e.g. revenue per second). "
            "Good: follows the events above.",
            [
                Query(
                    f"sum by (event, currency) ({k.rate('covet_business_value_total', e)})",
                    "{{event}} {{currency}}",
                )
            ],
            "short",
        ),
        PanelSpec(
            "stat",
            "Value in the range",
            "Increase of covet_business_value_total over the dashboard range, by currency.",
            [
                Query(
                    f"sum by (currency) ({value_in_range})",
                    "{{currency}}",
                    instant=True,
                )
            ],
            "short",
        ),
    ]
    return k.dashboard(
        uid="covetpy-business",
        title="Covet / Business",
        description="Business events and their values as the application records them.",
        groups=["business"],
        probe="covet_business_events_total",
        source=k.config.selectors.app,
        variables=[Var("event", "event", "covet_business_events_total", "Business event name")],
        panels=panels,
    )


def _lookback(k: Kit, alert: str, name: str = "lookback") -> str:
    return k.alert(alert).threshold(name).duration


def backup(k: Kit) -> dict[str, Any]:
    b = 'backup=~"$backup"'
    runs = "covet_backup_runs_total"
    look = _lookback(k, "BackupMissing")
    failed_look = _lookback(k, "BackupFailed")
    basis = f"last_over_time({runs}{k.sel(b)}[{failed_look}])"
    panels = [
        PanelSpec(
            "stat",
            "Time since the last successful backup",
            f"time() - covet_backup_last_success_timestamp, latest over {look} (jobs are "
            "short-lived: each run is a new instance). Good: less than the backup period, under "
            "the BackupMissing limit.",
            [
                Query(
                    "time() - max by (backup) "
                    f"(last_over_time(covet_backup_last_success_timestamp{k.sel(b)}[{look}]))",
                    "{{backup}}",
                    instant=True,
                )
            ],
            "s",
            alert="BackupMissing",
        ),
        PanelSpec(
            "stat",
            f"Failed runs ({failed_look})",
            f"Runs with outcome=failure of covet_backup_runs_total over {failed_look} (each run is "
            "its own series: max_over_time, not increase). Good: 0; any failure fires "
            "BackupFailed until a run succeeds.",
            [
                Query(
                    k.or_zero(
                        f"sum by (backup) (max_over_time({runs}{k.sel(b, FAILURE)}[{failed_look}]))",
                        "backup",
                        basis,
                    ),
                    "{{backup}}",
                    instant=True,
                )
            ],
            "short",
            steps=((None, GREEN), (1, RED)),
            alert="BackupFailed",
        ),
        PanelSpec(
            "stat",
            "Size of the last successful backup",
            f"covet_backup_size_bytes, latest over {look}. Good: close to the previous ones; a "
            "sudden drop is a partial dump.",
            [
                Query(
                    f"max by (backup) (last_over_time(covet_backup_size_bytes{k.sel(b)}[{look}]))",
                    "{{backup}}",
                    instant=True,
                )
            ],
            "bytes",
        ),
        PanelSpec(
            "bargauge",
            "Runs in the range by outcome",
            "covet_backup_runs_total over the dashboard range by outcome (one series per run: "
            "summed max_over_time). Good: success only.",
            [
                Query(
                    f"sum by (backup, outcome) (max_over_time({runs}{k.sel(b)}[$__range]))",
                    "{{backup}} {{outcome}}",
                    instant=True,
                )
            ],
            "short",
        ),
        PanelSpec(
            "timeseries",
            "Backup duration",
            "covet_backup_duration_seconds of each run (sum / count of its own series) by "
            "outcome. Good: stable from run to run; a growing duration outgrows its window.",
            [
                Query(
                    f"max by (backup, outcome) (covet_backup_duration_seconds_sum{k.sel(b)}"
                    f" / covet_backup_duration_seconds_count{k.sel(b)})",
                    "{{backup}} {{outcome}}",
                )
            ],
            "s",
            width=24,
        ),
    ]
    return k.dashboard(
        uid="covetpy-backup",
        title="Covet / Backup",
        description="Backups recorded by `covet-otel job backup` or the backup API: freshness, "
        "failures, size.",
        groups=["backup_migration"],
        probe=runs,
        source=k.config.selectors.app,
        variables=[Var("backup", "backup", runs, "Backup name (--name)")],
        panels=panels,
        time_from="now-24h",
        refresh="1m",
    )


def migrations(k: Kit) -> dict[str, Any]:
    m = 'migrator=~"$migrator"'
    runs = "covet_migration_runs_total"
    pending_look = _lookback(k, "MigrationsPending")
    failed_look = _lookback(k, "MigrationFailed")
    basis = f"last_over_time(covet_migration_pending{k.sel(m)}[{pending_look}])"
    panels = [
        PanelSpec(
            "stat",
            "Pending migrations",
            f"covet_migration_pending, latest over {pending_look}. Good: 0 after a deploy; "
            "pending for long fires MigrationsPending.",
            [
                Query(
                    f"max by (migrator) (last_over_time(covet_migration_pending{k.sel(m)}[{pending_look}]))",
                    "{{migrator}}",
                    instant=True,
                )
            ],
            "short",
            alert="MigrationsPending",
        ),
        PanelSpec(
            "stat",
            "Migration running for",
            "time() - covet_migration_started_timestamp while covet_migration_in_progress > 0; 0 "
            "when none runs. Good: minutes at most, under the MigrationStuck limit.",
            [
                Query(
                    k.or_zero(
                        f"max by (migrator) ((time() - covet_migration_started_timestamp{k.sel(m)})"
                        f" and on (job, instance, migrator) (covet_migration_in_progress{k.sel(m)} > 0))",
                        "migrator",
                        basis,
                    ),
                    "{{migrator}}",
                    instant=True,
                )
            ],
            "s",
            alert="MigrationStuck",
        ),
        PanelSpec(
            "stat",
            f"Failed runs ({failed_look})",
            f"Runs with outcome=failure of covet_migration_runs_total over {failed_look}. Good: "
            "0; a failure fires MigrationFailed until a run succeeds.",
            [
                Query(
                    k.or_zero(
                        f"sum by (migrator) (max_over_time({runs}{k.sel(m, FAILURE)}[{failed_look}]))",
                        "migrator",
                        basis,
                    ),
                    "{{migrator}}",
                    instant=True,
                )
            ],
            "short",
            steps=((None, GREEN), (1, RED)),
            alert="MigrationFailed",
        ),
        PanelSpec(
            "bargauge",
            "Runs in the range by outcome",
            "covet_migration_runs_total over the dashboard range by outcome (one series per run: "
            "summed max_over_time). Good: success only.",
            [
                Query(
                    f"sum by (migrator, outcome) (max_over_time({runs}{k.sel(m)}[$__range]))",
                    "{{migrator}} {{outcome}}",
                    instant=True,
                )
            ],
            "short",
        ),
        PanelSpec(
            "stat",
            "Time since the last successful migration",
            f"time() - covet_migration_last_success_timestamp, latest over {pending_look}. "
            "Tells when the schema last changed.",
            [
                Query(
                    "time() - max by (migrator) (last_over_time("
                    f"covet_migration_last_success_timestamp{k.sel(m)}[{pending_look}]))",
                    "{{migrator}}",
                    instant=True,
                )
            ],
            "s",
        ),
        PanelSpec(
            "timeseries",
            "Migration duration",
            "covet_migration_duration_seconds of each run (sum / count of its own series) by "
            "outcome. Good: short; long runs lock tables.",
            [
                Query(
                    f"max by (migrator, outcome) (covet_migration_duration_seconds_sum{k.sel(m)}"
                    f" / covet_migration_duration_seconds_count{k.sel(m)})",
                    "{{migrator}} {{outcome}}",
                )
            ],
            "s",
        ),
    ]
    return k.dashboard(
        uid="covetpy-migrations",
        title="Covet / Migrations",
        description="Schema migrations (Alembic, `covet-otel job migrate`): pending, running, failed.",
        groups=["backup_migration"],
        # apps report pending migrations, `covet-otel job migrate` runs under a job of its own
        probe=MIGRATION_SERIES,
        source=k.config.selectors.app,
        variables=[Var("migrator", "migrator", MIGRATION_SERIES, "Migration tool or name (--migrator)")],
        panels=panels,
        time_from="now-24h",
        refresh="1m",
    )
