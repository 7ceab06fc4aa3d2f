"""The whole stack, natively, for end-to-end tests: every component of docker-compose.yml as a real
process on free loopback ports in temporary directories.

    from harness.stack import Stack

    with Stack(rule_files=["alerts/covet.rules.yml"], alertmanager_config="alerts/alertmanager.yml") as stack:
        stack.prometheus.wait_for('covet_http_requests_total{job="shop"}')
        with stack.postgres.stopped():                     # a fault
            stack.webhook.wait_for_alert("PostgreSQLDown")
        stack.webhook.wait_for_alert("PostgreSQLDown", status="resolved")

Components (attributes of a :class:`Stack`; each a harness server with ``start/stop/kill/pause/resume``,
``stopped()``, ``paused_ctx()``, ``url``, ``address``, ``log_tail()``):

- ``postgres``: PostgreSQL (harness ``PostgreSQL``);
- ``postgres_exporter``: postgres_exporter as a ``pg_monitor`` role, with
  collector/postgres_exporter/queries.yaml;
- ``redis``: Redis;
- ``collector``: otelcol-covet with collector/config.yaml + collector/postgresql.yaml (unchanged: every
  address comes from the environment), receiving the app's OTLP and scraping Redis, this host and the
  exporter;
- ``prometheus``: Prometheus with prometheus/prometheus.yml (the file the compose stack mounts), scraping
  the collector (``honor_labels``), the collector's own telemetry, itself and Alertmanager, with the
  rule files of ``rule_files=``;
- ``alertmanager``: Alertmanager with ``alertmanager_config=`` (a file such as alerts/alertmanager.yml,
  or a dict; default: one "null" receiver);
- ``webhook``, ``smtp``: notification sinks in the test process (:mod:`harness.stack_sinks`), the parts of
  the compose stack's webhook sink and Mailpit;
- ``app``: the instrumented app (demo/shop.py, the compose stack's app too) under
  ``opentelemetry-instrument``, pushing OTLP to the collector as ``job="shop"`` (pool ``shop``), with its
  own traffic driver.

Same config files as compose: the collector runs the shipped files as they are (compose and the stack
set the same ``COVET_*`` variables, with different values). Prometheus's and Alertmanager's files are
loaded and rewritten before use: every ``service:port`` of the compose file is replaced by the native
``127.0.0.1:port`` (:data:`COMPOSE_PORTS`, :meth:`Stack.addresses`, :func:`rewrite_addresses`), the
rule-file paths by ``rule_files=``, and the timings are shortened for tests (Prometheus: 1 s scrape
and evaluation; Alertmanager, unless ``fast_alertmanager=False``: group_wait 1 s and group_interval 2 s
in every route). Nothing else changes.

Data flows within seconds: 1 s app export and Prometheus scrapes, 2 s collector scrapes; the collector's
``batch`` processor (5 s timeout, shipped config) is the largest delay. ``Stack.start()`` returns when
every process answers; ``wait_for_data()`` (called by ``start()`` unless ``wait_for_data=False``) waits
until every metric group has arrived at Prometheus, one successful backup and migration run included.

Faults on demand:

- servers: ``stack.postgres.stop()`` / ``.pause()`` (connections hang), ``stack.redis.stop()``,
  ``stack.collector.stop()``, ``stack.app.stop()``, ``stack.postgres_exporter.stop()``; each has
  ``stopped()`` / ``paused_ctx()`` context managers that restore it;
- the app (:class:`StackApp`): ``leak()`` (``not_released``; ``reason="held_too_long"``),
  ``exhaust_pool(seconds)``, ``fail_health(True/False)``, ``traffic(rps=, errors=, slow=)`` (e.g.
  ``errors=0.5`` for a high 5xx ratio), ``set_pending_migrations(n)``;
- jobs: ``stack.run_backup(fail=True)`` (a real ``pg_dump`` under ``covet-otel job backup``; failing:
  dumping a database that does not exist), ``stack.run_migration(fail=True)`` (``psql`` under
  ``covet-otel job migrate``).

A test that injects faults creates its own ``Stack``; read-only tests share the session fixture
``stack`` (tests/conftest.py). ``Stack.timings`` records how long start-up took (seconds, per phase).
"""

from __future__ import annotations

import contextlib
import copy
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from . import stack_compose, tools
from .collector import Collector
from .servers import (
    Alertmanager,
    PostgresExporter,
    PostgreSQL,
    Prometheus,
    Redis,
    Server,
    ServerStartError,
    _http_ok,
    free_port,
)
from .stack_sinks import SmtpSink, WebhookSink

REPO = tools.REPO_ROOT
APP_SCRIPT = REPO / "demo" / "shop.py"
APP_JOB = "shop"  # service.name of the app: its job label
APP_POOL = "shop"  # the app's asyncpg pool name: the pool label
BACKUP_NAME = "nightly"
REDIS_ARGS = ("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
MIGRATOR = "generic"

# Compose services and the container ports other services address them by (docker-compose.yml).
# The native stack replaces "<service>:<port>" in the mounted configs by the loopback address of the
# process that plays that part. tests/stack checks this table against docker-compose.yml.
COMPOSE_PORTS: dict[str, dict[int, str]] = {
    "otelcol": {
        4317: "OTLP/gRPC",
        4318: "OTLP/HTTP",
        8888: "collector telemetry",
        8889: "Prometheus exporter",
        13133: "health_check",
    },
    "prometheus": {9090: "web and API"},
    "alertmanager": {9093: "web and API"},
    "postgres": {5432: "PostgreSQL"},
    "postgres-exporter": {9187: "postgres_exporter"},
    "redis": {6379: "Redis"},
    "mailpit": {1025: "SMTP", 8025: "web UI"},
    "webhook": {8080: "webhook sink"},
    "app": {8000: "demo app"},
    "grafana": {3000: "web"},
}


def rewrite_addresses(value: Any, mapping: Mapping[str, str]) -> Any:
    """``value`` (parsed YAML) with every ``host:port`` key of ``mapping`` replaced by its value in every
    string, as a whole address (``otelcol:8889`` matches in ``http://otelcol:8889/x``, not in
    ``otelcol:88890`` or ``my-otelcol:8889``)."""
    if not mapping:
        return copy.deepcopy(value)
    pattern = re.compile(
        r"(?<![\w.-])(" + "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True)) + r")(?!\d)"
    )

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return pattern.sub(lambda m: mapping[m.group(1)], node)
        if isinstance(node, Mapping):
            return {walk(k): walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(value)


def _flag(service: str, flag: str) -> list[str]:
    """Values of ``--flag=value`` in the command of a compose service."""
    command = stack_compose.services()[service].get("command") or []
    return [str(arg).split("=", 1)[1] for arg in command if str(arg).startswith(f"{flag}=")]


def compose_collector_configs() -> list[Path]:
    """The config files the compose ``otelcol`` service runs (its ``--config`` flags, through its mounts)."""
    return [stack_compose.host_path("otelcol", p) for p in _flag("otelcol", "--config")]


def compose_prometheus_config() -> Path:
    """The file the compose ``prometheus`` service runs (``--config.file``, through its mounts)."""
    (path,) = _flag("prometheus", "--config.file")
    return stack_compose.host_path("prometheus", path)


def shipped_rule_files() -> list[Path]:
    """The rule files the compose Prometheus loads: its config's ``rule_files`` globs, through its mounts."""
    config_path = _flag("prometheus", "--config.file")[0]
    data = yaml.safe_load(compose_prometheus_config().read_text(encoding="utf-8"))
    found: list[Path] = []
    for pattern in data.get("rule_files") or []:
        found += stack_compose.host_glob("prometheus", pattern, relative_to=os.path.dirname(config_path))
    return found


def shipped_alertmanager_config() -> Path | None:
    """The file the compose ``alertmanager`` service runs (None while it does not exist yet)."""
    (path,) = _flag("alertmanager", "--config.file")
    found = stack_compose.host_path("alertmanager", path)
    return found if found.is_file() else None


def _map_container_paths(value: Any, service: str) -> Any:
    """``value`` with every absolute path string inside a bind mount of compose ``service`` (a glob
    such as ``/etc/x/templates/*.tmpl`` too) replaced by the repository path it mounts."""
    if isinstance(value, str):
        if not value.startswith("/") or "\n" in value:
            return value
        directory, name = posixpath.split(value)
        try:
            if any(c in name for c in "*?["):
                return str(stack_compose.host_path(service, directory) / name)
            return str(stack_compose.host_path(service, value))
        except LookupError:
            return value
    if isinstance(value, Mapping):
        return {k: _map_container_paths(v, service) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_container_paths(v, service) for v in value]
    return value


def _opentelemetry_instrument() -> Path:
    path = Path(sys.executable).with_name("opentelemetry-instrument")
    if path.is_file():
        return path
    found = shutil.which("opentelemetry-instrument")
    if found is None:
        tools.missing("opentelemetry-instrument", "pip install -e '.[test]'")
    return Path(str(found))


# ---------------------------------------------------------------------------------------------------
# servers of the stack
# ---------------------------------------------------------------------------------------------------
class StackPrometheus(Prometheus):
    """Prometheus running prometheus/prometheus.yml with its compose addresses rewritten (see module
    docstring); ``addresses`` maps ``service:port`` to ``127.0.0.1:port``."""

    def __init__(
        self, *, source: Path | None = None, addresses: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(scrape_self=False, **kwargs)
        self.source = source or compose_prometheus_config()
        self.addresses = dict(addresses or {})
        # False: the file's alerting section is left out (a Prometheus that notifies nobody)
        self.alerting = True

    def config(self) -> dict[str, Any]:
        data = yaml.safe_load(self.source.read_text(encoding="utf-8"))
        own = {"localhost:9090": self.address, "prometheus:9090": self.address}
        data = rewrite_addresses(data, {**self.addresses, **own})
        glob = data.setdefault("global", {})
        glob.update(
            scrape_interval=self.scrape_interval,
            scrape_timeout=self.scrape_interval,
            evaluation_interval=self.evaluation_interval,
        )
        for scrape in data.get("scrape_configs", []):
            scrape.pop("scrape_interval", None)
            scrape.pop("scrape_timeout", None)
        if self.rule_files:
            data["rule_files"] = list(self.rule_files)
        else:
            data.pop("rule_files", None)
        if not self.alerting:
            data.pop("alerting", None)
        # OTLP pushes from several processes may arrive slightly out of order
        data.setdefault("storage", {}).setdefault("tsdb", {})["out_of_order_time_window"] = "30m"
        return data


def fast_routes(config: dict[str, Any], group_wait: str = "1s", group_interval: str = "2s") -> dict[str, Any]:
    """An Alertmanager config with the grouping delays of every route shortened (tests only)."""
    config = copy.deepcopy(config)

    def walk(route: dict[str, Any], top: bool) -> None:
        if top or "group_wait" in route:
            route["group_wait"] = group_wait
        if top or "group_interval" in route:
            route["group_interval"] = group_interval
        for child in route.get("routes") or []:
            walk(child, False)

    if isinstance(config.get("route"), dict):
        walk(config["route"], True)
    return config


class StackApp(Server):
    """The instrumented app (demo/shop.py) under ``opentelemetry-instrument``."""

    name = "stack-app"

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        otlp_endpoint: str,
        rps: float = 20.0,
        errors: float = 0.03,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.launcher = _opentelemetry_instrument()
        super().__init__(**kwargs)
        self.database_url = database_url
        self.redis_url = redis_url
        self.rps = rps
        self.errors = errors
        self.env = {
            "OTEL_SERVICE_NAME": APP_JOB,
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "COVET_DB_SLOW_QUERY_SECONDS": "0.2",
            "COVET_DB_LEAK_SECONDS": "3",
            "COVET_HEALTH_CACHE_SECONDS": "0.5",
            "COVET_HTTP_EXCLUDED_PATHS": "/metrics,/health,/_stack",
            "PYTHONUNBUFFERED": "1",
            **dict(env or {}),
        }

    def command(self) -> list[str]:
        return [
            str(self.launcher), sys.executable, str(APP_SCRIPT),
            "--port", str(self.port),
            "--database-url", self.database_url,
            "--redis-url", self.redis_url,
            "--rps", str(self.rps),
            "--errors", str(self.errors),
        ]  # fmt: skip

    def ready(self) -> bool:
        return _http_ok(f"{self.url}/_stack/ready")

    def _post(self, path: str, **params: Any) -> dict[str, Any]:
        with httpx.Client(timeout=30, trust_env=False) as client:
            response = client.post(f"{self.url}{path}", params=params)
        response.raise_for_status()
        return response.json()

    def traffic(
        self, *, rps: float | None = None, errors: float | None = None, slow: float | None = None
    ) -> dict[str, Any]:
        """Set the request rate (0 stops the driver), the share of requests answered 500 and the
        share of requests that take 0.8 s (``/slow``, over the latency SLO threshold)."""
        params: dict[str, Any] = {}
        if rps is not None:
            params["rps"] = self.rps = rps
        if errors is not None:
            params["errors"] = self.errors = errors
        if slow is not None:
            params["slow"] = slow
        return self._post("/_stack/traffic", **params)

    def stats(self) -> dict[str, Any]:
        """What the driver sent so far, by status code."""
        with httpx.Client(timeout=10, trust_env=False) as client:
            return client.get(f"{self.url}/_stack/stats").json()

    def leak(self, reason: str = "not_released", seconds: float = 3600.0) -> None:
        """Leak one pool connection: ``not_released`` (dropped without release: gone for good) or
        ``held_too_long`` (held ``seconds``, past COVET_DB_LEAK_SECONDS=3, then released)."""
        self._post("/_stack/leak", reason=reason, seconds=seconds)

    def exhaust_pool(self, seconds: float = 30.0) -> int:
        """Hold every free pool connection for ``seconds``: requests then time out acquiring (1 s)."""
        return int(self._post("/_stack/exhaust", seconds=seconds)["held"])

    def fail_health(self, fail: bool = True) -> None:
        """The critical health check ``stack:switch`` fails (or passes again)."""
        self._post("/_stack/health", fail=int(fail))

    def set_pending_migrations(self, count: int) -> None:
        self._post("/_stack/pending", count=count)


# ---------------------------------------------------------------------------------------------------
# the stack
# ---------------------------------------------------------------------------------------------------
class Stack:
    """Every component of the compose stack as a native process; see the module docstring."""

    def __init__(
        self,
        *,
        rule_files: Iterable[str | os.PathLike[str]] = (),
        alertmanager_config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        fast_alertmanager: bool = True,
        app: bool = True,
        rps: float = 20.0,
        errors: float = 0.03,
        jobs: bool = True,
        app_env: Mapping[str, str] | None = None,
        collector_env: Mapping[str, str] | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="covet-stack-"))
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.startup_timeout = startup_timeout
        self.with_app = app
        self.with_jobs = jobs
        self.timings: dict[str, float] = {}
        self.started_at = 0.0  # time.monotonic() when start() returned
        self._started = False

        self.webhook = WebhookSink()
        self.smtp = SmtpSink()
        self.postgres = PostgreSQL()
        self.postgres_exporter = PostgresExporter(self.postgres)
        # a cache with a memory limit, as in production (and in docker-compose.yml): the memory
        # panels and alerts compare against maxmemory
        self.redis = Redis(extra_args=REDIS_ARGS)
        self.collector = Collector(
            configs=compose_collector_configs(),
            env={
                "COVET_REDIS_ENDPOINT": self.redis.address,
                "COVET_POSTGRES_EXPORTER_ENDPOINT": self.postgres_exporter.address,
                "COVET_POSTGRES_INSTANCE": self.postgres.address,
                "COVET_HOST_INSTANCE": "stack-host",
                # not 1 s: while PostgreSQL is down postgres_exporter takes 1 s to answer (pg_up 0), and
                # the scrape timeout is the interval; a timed-out scrape would drop the series instead
                "COVET_COLLECTOR_SCRAPE_INTERVAL": "2s",
                **dict(collector_env or {}),
            },
        )
        # its port is in its own config (Prometheus's address map needs it too): reserve it first
        self._alertmanager_port = free_port()
        self.alertmanager = Alertmanager(
            config=self._alertmanager_config(alertmanager_config, fast_alertmanager),
            port=self._alertmanager_port,
        )
        self.prometheus = StackPrometheus(addresses={}, rule_files=self.rule_files)
        self.app: StackApp | None = None
        if app:
            self.app = StackApp(
                database_url=self.postgres.dsn,
                redis_url=self.redis.url,
                otlp_endpoint=self.collector.otlp_endpoint,
                rps=rps,
                errors=errors,
                env=app_env,
            )
        self.prometheus.addresses = self.addresses()

    # -- configuration ------------------------------------------------------------------------------
    def addresses(self) -> dict[str, str]:
        """``compose service:port`` → the native ``127.0.0.1:port`` playing that part (the parts with no
        native process, Grafana and Mailpit's web UI, are left out)."""
        c = self.collector
        mapping = {
            "otelcol:4317": f"127.0.0.1:{c.otlp_grpc}",
            "otelcol:4318": f"127.0.0.1:{c.otlp_http}",
            "otelcol:8888": c.telemetry_address,
            "otelcol:8889": c.address,
            "otelcol:13133": f"127.0.0.1:{c.health}",
            "prometheus:9090": self.prometheus.address,
            "alertmanager:9093": self.alertmanager.address,
            "postgres:5432": self.postgres.address,
            "postgres-exporter:9187": self.postgres_exporter.address,
            "redis:6379": self.redis.address,
            "mailpit:1025": self.smtp.address,
            "webhook:8080": self.webhook.address,
        }
        if self.app is not None:
            mapping["app:8000"] = self.app.address
        return mapping

    def _alertmanager_config(
        self, source: str | os.PathLike[str] | Mapping[str, Any] | None, fast: bool
    ) -> dict[str, Any] | None:
        if source is None:
            return None
        if isinstance(source, Mapping):
            data: dict[str, Any] = dict(source)
        else:
            data = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
        # sinks and the Alertmanager exist already: their addresses are known before start
        mapping = {
            "mailpit:1025": self.smtp.address,
            "webhook:8080": self.webhook.address,
            "alertmanager:9093": f"127.0.0.1:{self._alertmanager_port}",
        }
        data = rewrite_addresses(data, mapping)
        # file paths. Alertmanager reads relative ones (templates) from its config file's directory: for
        # the file the compose service mounts, that is the container directory, mapped back through the
        # mounts like the absolute ones (templates, secrets_dir files); for any other file, its own
        templates = list(data.get("templates") or [])
        if templates:
            compose_file = shipped_alertmanager_config()
            if not isinstance(source, Mapping) and compose_file and Path(source).resolve() == compose_file:
                (container_config,) = _flag("alertmanager", "--config.file")
                base = posixpath.dirname(container_config)
                data["templates"] = [posixpath.join(base, t) for t in templates]
            else:
                base_dir = Path(source).resolve().parent if not isinstance(source, Mapping) else REPO
                data["templates"] = [t if posixpath.isabs(t) else str(base_dir / t) for t in templates]
        data = _map_container_paths(data, "alertmanager")
        return fast_routes(data) if fast else data

    # -- life cycle ---------------------------------------------------------------------------------
    def servers(self) -> list[Server]:
        """Every process of the stack, in start order."""
        found: list[Server] = [
            self.postgres,
            self.redis,
            self.collector,
            self.alertmanager,
            self.prometheus,
            self.postgres_exporter,
        ]
        if self.app is not None:
            found.append(self.app)
        return found

    def start(self, *, wait_for_data: bool = True, timeout: float | None = None) -> Stack:
        """Start everything; returns when every process answers (and, by default, when every metric
        group has arrived at Prometheus)."""
        t0 = time.monotonic()
        self._started = True
        try:
            self.webhook.start()
            self.smtp.start()
            # Every process is spawned at once and waited for together: start-up takes as long as
            # the slowest one (the app's imports), not the sum. The app retries its database, the
            # collector its receivers and Prometheus its targets, so the order does not matter, except
            # for the exporter's role, created through psql once PostgreSQL answers.
            for server in (self.postgres, self.redis, self.collector, self.alertmanager, self.prometheus):
                _spawn(server)
            if self.app is not None:
                _spawn(self.app)
            _wait_ready([self.postgres], self.startup_timeout)
            self.postgres_exporter.start()
            _wait_ready(self.servers(), self.startup_timeout)
            self.timings["processes_ready"] = time.monotonic() - t0
            if self.with_jobs:
                self.run_backup()
                self.run_migration()
            if wait_for_data:
                self.wait_for_data(timeout or self.startup_timeout)
                self.timings["data_ready"] = time.monotonic() - t0
            self.started_at = time.monotonic()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything and remove every temporary directory."""
        for server in reversed(self.servers()):
            with contextlib.suppress(Exception):
                server.cleanup()
        self.webhook.stop()
        self.smtp.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- data ---------------------------------------------------------------------------------------
    # one series per part of the flow; wait_for_data() waits for all of them
    READY_QUERIES: tuple[str, ...] = (
        f'covet_http_requests_total{{job="{APP_JOB}"}}',
        f'covet_db_query_duration_seconds_count{{job="{APP_JOB}"}}',
        f'covet_cache_hits_total{{job="{APP_JOB}"}}',
        f'covet_health_check_status{{job="{APP_JOB}"}}',
        f'covet_business_events_total{{job="{APP_JOB}"}}',
        f'covet_security_rate_limited_total{{job="{APP_JOB}"}}',
        f'covet_system_cpu_usage_percent{{job="{APP_JOB}"}}',
        f'covet_backup_last_success_timestamp{{backup="{BACKUP_NAME}"}}',
        f'covet_migration_last_success_timestamp{{migrator="{MIGRATOR}"}}',
        'covet_cache_memory_usage_bytes{job="redis"}',
        'covet_host_memory_usage_bytes{job="node"}',
        "covet_postgresql_up == 1",
        'up{job="otelcol-self"} == 1',
        'up{job="prometheus"} == 1',
        'up{job="alertmanager"} == 1',
    )

    def ready_queries(self) -> list[str]:
        queries = list(self.READY_QUERIES)
        if self.app is None:
            queries = [q for q in queries if APP_JOB not in q]
        if not self.with_jobs:
            queries = [q for q in queries if "backup" not in q and "migration" not in q]
        return queries

    def wait_for_data(self, timeout: float = 90.0) -> None:
        """Wait until every part of the flow has data at Prometheus (:attr:`READY_QUERIES`)."""
        deadline = time.monotonic() + timeout
        missing = self.ready_queries()
        while missing:
            missing = [q for q in missing if not self._has(q)]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no data at Prometheus after {timeout}s for: {missing}\n{self.diagnostics()}"
                )
            time.sleep(0.5)

    def _has(self, promql: str) -> bool:
        try:
            return bool(self.prometheus.query(promql))
        except Exception:
            return False

    def metric_names(self) -> set[str]:
        """Every metric name Prometheus has (``/api/v1/label/__name__/values``)."""
        return set(self.prometheus.api_get("/api/v1/label/__name__/values"))

    def diagnostics(self) -> str:
        """The end of every process's log and the Prometheus targets' health: for failure messages."""
        parts = []
        for server in self.servers():
            parts.append(f"--- {server.name} {server!r}\n{server.log_tail(2000)}")
        with contextlib.suppress(Exception):
            for target in self.prometheus.targets():
                parts.append(
                    f"target {target['scrapeUrl']}: {target['health']} {target.get('lastError', '')}"
                )
        return "\n".join(parts)

    # -- jobs ---------------------------------------------------------------------------------------
    def _job_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COVET_"))}
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=self.collector.otlp_endpoint, PGCONNECT_TIMEOUT="5")
        return env

    def _covet_otel(self) -> list[str]:
        return [sys.executable, "-m", "covet_otel.cli"]

    def run_backup(self, *, fail: bool = False, name: str = BACKUP_NAME) -> subprocess.CompletedProcess[str]:
        """``covet-otel job backup`` around a real ``pg_dump`` of the stack's database; ``fail=True``
        dumps a database that does not exist (pg_dump exits 1)."""
        output = self.workdir / f"{name}.dump"
        output.unlink(missing_ok=True)
        database = "no_such_database" if fail else self.postgres.database
        pg_dump = tools.postgres_bin_dir() / "pg_dump"
        command = [
            *self._covet_otel(), "job", "backup", "--name", name, "--output", str(output), "--",
            str(pg_dump), "-Fc", "-f", str(output),
            "-h", self.postgres.host, "-p", str(self.postgres.port), "-U", self.postgres.user, database,
        ]  # fmt: skip
        return self._run_job(command, expect_ok=not fail)

    def run_migration(
        self, *, fail: bool = False, migrator: str = MIGRATOR
    ) -> subprocess.CompletedProcess[str]:
        """``covet-otel job migrate`` around ``psql`` applying a schema change; ``fail=True`` runs a
        statement that fails."""
        sql = (
            "ALTER TABLE no_such_table ADD COLUMN x int"
            if fail
            else ("CREATE TABLE IF NOT EXISTS stack_migrations (version int PRIMARY KEY)")
        )
        psql = tools.postgres_bin_dir() / "psql"
        command = [
            *self._covet_otel(), "job", "migrate", "--migrator", migrator, "--",
            str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", self.postgres.host, "-p", str(self.postgres.port), "-U", self.postgres.user,
            "-d", self.postgres.database, "-c", sql,
        ]  # fmt: skip
        return self._run_job(command, expect_ok=not fail)

    def _run_job(self, command: Sequence[str], *, expect_ok: bool) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            list(command), env=self._job_env(), capture_output=True, text=True, timeout=120, check=False
        )
        if (proc.returncode == 0) != expect_ok:
            raise RuntimeError(
                f"job {command[3:5]} exited {proc.returncode} "
                f"(expected {'0' if expect_ok else 'non-zero'}):\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc


def _spawn(server: Server) -> None:
    """Start ``server``'s process without waiting for it to be ready (see :func:`_wait_ready`)."""
    server.ready = lambda: True  # type: ignore[method-assign]
    try:
        server.start()
    finally:
        del server.ready  # the class's real check again


def _wait_ready(servers: Sequence[Server], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        for server in list(pending):
            if not server.running:
                raise ServerStartError(f"{server.name} exited during start-up:\n{server.log_tail()}")
            try:
                ok = server.ready()
            except Exception:
                ok = False
            if ok:
                pending.remove(server)
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            tails = "\n".join(f"--- {s.name}\n{s.log_tail(3000)}" for s in pending)
            raise ServerStartError(f"not ready within {timeout}s: {names}\n{tails}")
        time.sleep(0.1)


@contextlib.contextmanager
def running_stack(**kwargs: Any) -> Iterator[Stack]:
    """``with running_stack(rule_files=...) as stack:`` (the same as ``with Stack(...) as stack``)."""
    stack = Stack(**kwargs)
    with stack:
        yield stack


def session_stack() -> Iterator[Stack]:
    """The shared, healthy stack of the ``stack`` fixture: the shipped rule files and Alertmanager
    config (when alerts/ has them), traffic running, one backup and one migration run."""
    with Stack(rule_files=shipped_rule_files(), alertmanager_config=shipped_alertmanager_config()) as stack:
        yield stack
