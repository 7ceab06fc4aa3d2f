"""End to end on real components: Redis, the host, app processes pushing OTLP -> the built collector ->
a real Prometheus scraping the collector's Prometheus exporter."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import CONFIG, POSTGRESQL, collector_scrape_config
from covet_fixtures import Samples, launch

from covet_otel.catalogue import CATALOGUE

pytestmark = pytest.mark.slow

SCOPE_LABELS = {"otel_scope_name", "otel_scope_version", "otel_scope_schema_url"}
COLLECTOR_METRICS = {d.name: d for d in CATALOGUE if d.source == "collector"}
POSTGRESQL_METRICS = {n for n in COLLECTOR_METRICS if n.startswith("covet_postgresql_")}


IGNORED = ("__name__", "job", "instance")


def label_keys(series: dict[str, str]) -> set[str]:
    return set(series) - {"__name__"}


def test_redis_and_host_metrics_arrive_with_their_catalogue_names(
    collector_factory, redis_server, prometheus_factory
) -> None:
    collector = collector_factory(env={"COVET_REDIS_ENDPOINT": redis_server.address})
    prom = prometheus_factory(scrape_self=False, scrape_configs=[collector_scrape_config(collector)])
    want = set(COLLECTOR_METRICS) - POSTGRESQL_METRICS
    result = prom.wait_for(
        '{__name__=~"covet_.+"}', lambda r: {s["metric"]["__name__"] for s in r} >= want, timeout=60
    )
    by_name: dict[str, list[dict[str, str]]] = {}
    for sample in result:
        by_name.setdefault(sample["metric"]["__name__"], []).append(sample["metric"])
    # nothing but catalogue names: the filter drops every other receiver metric
    assert set(by_name) == want
    for name, series in by_name.items():
        definition = COLLECTOR_METRICS[name]
        for labels in series:
            # the catalogue's labels, job/instance, and the scope labels every exporter adds
            assert label_keys(labels) == {"job", "instance", *definition.label_names}, (name, labels)
            job = "redis" if name.startswith(("covet_cache_", "covet_redis_")) else "node"
            assert labels["job"] == job
            if job == "redis":
                assert labels["instance"] == redis_server.address
    assert float(prom.query("covet_cache_memory_usage_bytes")[0]["value"][1]) > 0
    for state in (s["state"] for s in by_name["covet_host_memory_usage_bytes"]):
        assert state in {"used", "free", "buffered", "cached", "slab_reclaimable", "slab_unreclaimable"}


def test_postgresql_metrics_arrive_with_their_catalogue_names(
    collector_factory, postgres, postgres_exporter, prometheus_factory
) -> None:
    """PostgreSQL -> postgres_exporter (pg_monitor role) -> the collector's prometheus receiver ->
    Prometheus: every covet_postgresql_* metric of the catalogue, exactly its labels, job/instance naming
    the database server, and values that follow the server."""
    collector = collector_factory(
        configs=(CONFIG, POSTGRESQL),
        env={
            "COVET_POSTGRES_EXPORTER_ENDPOINT": postgres_exporter.address,
            "COVET_POSTGRES_INSTANCE": postgres.address,
        },
    )
    prom = prometheus_factory(scrape_self=False, scrape_configs=[collector_scrape_config(collector)])
    postgres.psql("CREATE DATABASE e2e_shop")
    try:
        result = prom.wait_for(
            '{__name__=~"covet_postgresql_.+"}',
            lambda r: (
                {s["metric"]["__name__"] for s in r} >= POSTGRESQL_METRICS
                and any(s["metric"].get("database") == "e2e_shop" for s in r)
            ),
            timeout=60,
        )
        assert {s["metric"]["__name__"] for s in result} == POSTGRESQL_METRICS
        for sample in result:
            labels = sample["metric"]
            definition = COLLECTOR_METRICS[labels["__name__"]]
            assert label_keys(labels) == {"job", "instance", *definition.label_names}, labels
            assert (labels["job"], labels["instance"]) == ("postgresql", postgres.address)
            for label in definition.labels:
                if label.values is not None:
                    assert labels[label.name] in label.values, labels
        # template databases only where they matter (transaction-ID age), the shared-objects row never
        databases = {(s["metric"]["__name__"], s["metric"].get("database")) for s in result}
        assert ("covet_postgresql_xid_age", "template0") in databases
        assert not {
            d
            for d in databases
            if d[1] in ("template0", "template1", "") and d[0] != "covet_postgresql_xid_age"
        }
        value = {(s["metric"]["__name__"], s["metric"].get("database")): float(s["value"][1]) for s in result}
        assert value[("covet_postgresql_up", None)] == 1
        assert value[("covet_postgresql_connections_max", None)] == 200  # the harness setting
        assert value[("covet_postgresql_db_size_bytes", "e2e_shop")] > 1_000_000
        assert value[("covet_postgresql_replication_lag_seconds", None)] == 0  # a primary
        assert value[("covet_postgresql_xid_age", "postgres")] > 0
        assert value[("covet_postgresql_oldest_transaction_age_seconds", "e2e_shop")] == 0

        # an open transaction, an access-exclusive lock and an aborted one: the server's state shows
        import psycopg

        with psycopg.connect(postgres.dsn_for("e2e_shop"), autocommit=False) as conn:
            conn.execute("CREATE TABLE t (id int)")
            conn.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            prom.wait_for(
                'covet_postgresql_oldest_transaction_age_seconds{database="e2e_shop"} > 2 and on()'
                ' covet_postgresql_locks{database="e2e_shop", mode="accessexclusivelock"} > 0 and on()'
                ' covet_postgresql_connections{database="e2e_shop", state="idle in transaction"} == 1',
                bool,
                timeout=30,
            )
            conn.rollback()
        rollbacks = 'covet_postgresql_rollbacks_total{database="e2e_shop"}'
        prom.wait_for(rollbacks + " > 0", bool, timeout=30)
    finally:
        postgres.psql("DROP DATABASE IF EXISTS e2e_shop WITH (FORCE)")


def test_postgresql_down_is_reported_and_recovers(
    collector_factory, fresh_postgres, prometheus_factory
) -> None:
    """The exporter keeps serving while the server is down: covet_postgresql_up goes to 0 within a few
    scrapes and back to 1 after a restart (the PostgreSQLDown alert relies on it)."""
    from harness import PostgresExporter

    with PostgresExporter(fresh_postgres) as exporter:
        exporter.start()
        # postgres_exporter answers ~1 s late while the server is down (its connection attempt): a 2 s
        # interval keeps the scrape inside its timeout, as the 15 s default does with room to spare
        collector = collector_factory(
            configs=(CONFIG, POSTGRESQL),
            env={
                "COVET_POSTGRES_EXPORTER_ENDPOINT": exporter.address,
                "COVET_COLLECTOR_SCRAPE_INTERVAL": "2s",
            },
        )
        prom = prometheus_factory(scrape_self=False, scrape_configs=[collector_scrape_config(collector)])
        prom.wait_for("covet_postgresql_up == 1", bool, timeout=60)
        fresh_postgres.stop()
        down = prom.wait_for("covet_postgresql_up == 0", bool, timeout=60)
        assert down[0]["metric"]["instance"] == "127.0.0.1:5432"  # COVET_POSTGRES_INSTANCE's default
        fresh_postgres.start()
        prom.wait_for("covet_postgresql_up == 1", bool, timeout=60)


def test_no_secret_of_the_exporter_reaches_prometheus(
    collector_factory, postgres, postgres_exporter, prometheus_factory
) -> None:
    collector = collector_factory(
        configs=(CONFIG, POSTGRESQL), env={"COVET_POSTGRES_EXPORTER_ENDPOINT": postgres_exporter.address}
    )
    text = ""
    deadline = time.monotonic() + 60
    while "covet_postgresql_up" not in text and time.monotonic() < deadline:
        time.sleep(0.5)
        text = httpx.get(collector.metrics_url).text
    assert "covet_postgresql_up" in text
    assert postgres_exporter.password not in text
    assert postgres_exporter.role not in text


# An app-like process that uses opentelemetry-sdk directly: the same instruments go to an embedded
# Prometheus endpoint (the Python exporter) and, by OTLP/HTTP protobuf, to the collector.
SDK_APP = """
import sys, time
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server

otlp_endpoint, prom_port = sys.argv[1], int(sys.argv[2])
start_http_server(prom_port, addr="127.0.0.1")
provider = MeterProvider(
    metric_readers=[
        PrometheusMetricReader(),
        PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=otlp_endpoint + "/v1/metrics"), export_interval_millis=500
        ),
    ],
    resource=Resource.create({"service.name": "sdk-app", "service.instance.id": "sdk-app-1"}),
)
meter = provider.get_meter("covet_otel", "0.1.0")
duration = meter.create_histogram(
    "covet.db.query.duration", unit="s", description="Query duration",
    explicit_bucket_boundaries_advisory=[0.001, 0.01, 0.1, 1.0, 10.0],
)
requests = meter.create_counter("covet.http.requests", unit="{request}", description="Requests")
ratio = meter.create_gauge("covet.cache.hit.ratio", unit="1", description="Hit ratio")
memory = meter.create_gauge("covet.system.memory.usage", unit="By", description="Memory")
active = meter.create_up_down_counter("covet.db.connections.active", unit="{connection}")
cpu = meter.create_gauge("covet.system.cpu.usage", unit="%", description="CPU")
active.add(3, {"pool": "default"})
print("ready", flush=True)
while True:
    duration.record(0.004, {"operation": "select", "db.system": "postgresql"})
    duration.record(0.2, {"operation": "insert", "db.system": "postgresql"})
    requests.add(1, {"method": "GET", "route": "/items/{id}", "status": "200"})
    ratio.set(0.75, {"cache": "redis"})
    memory.set(123456, {"type": "rss"})
    cpu.set(12.5)
    time.sleep(0.2)
"""


def test_sdk_otlp_push_arrives_under_the_python_exporters_names_and_labels(
    collector_factory, prometheus_factory, free_port, tmp_path: Path
) -> None:
    collector = collector_factory()
    app_port = free_port()
    script = tmp_path / "sdk_app.py"
    script.write_text(SDK_APP)
    app = subprocess.Popen(
        [sys.executable, str(script), collector.otlp_endpoint, str(app_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "ready"
        prom = prometheus_factory(
            scrape_self=False,
            scrape_configs=[
                collector_scrape_config(collector),
                {
                    "job_name": "embedded",
                    "scrape_interval": "1s",
                    "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}],
                },
            ],
        )
        names = {
            "covet_db_query_duration_seconds_bucket",
            "covet_db_query_duration_seconds_sum",
            "covet_db_query_duration_seconds_count",
            "covet_http_requests_total",
            "covet_cache_hit_ratio",
            "covet_system_memory_usage_bytes",
            "covet_db_connections_active",
            "covet_system_cpu_usage_percent",
        }

        def series(job: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
            result = prom.wait_for(
                f'{{__name__=~"covet_.+", job="{job}"}}',
                lambda r: {s["metric"]["__name__"] for s in r} >= names,
                timeout=60,
            )
            return {
                (
                    s["metric"]["__name__"],
                    tuple(sorted((k, v) for k, v in s["metric"].items() if k not in IGNORED)),
                )
                for s in result
            }

        through_collector = series("sdk-app")
        embedded = series("embedded")
        assert {n for n, _ in through_collector} == names
        # same names, same label keys and values. Scope labels are the one known difference: the stock
        # Python exporter adds otel_scope_*; the collector does not (without_scope_info: true), as
        # covet_otel's embedded endpoint does not.
        assert not {k for _, labels in through_collector for k, _ in labels} & SCOPE_LABELS
        assert through_collector == {
            (name, tuple((k, v) for k, v in labels if k not in SCOPE_LABELS)) for name, labels in embedded
        }
        instance = prom.query('covet_http_requests_total{job="sdk-app"}')[0]["metric"]["instance"]
        assert instance == "sdk-app-1"
    finally:
        app.terminate()
        app.wait(10)


APP = """
import time
time.sleep(300)
"""


def test_app_under_the_launcher_has_path_parity_and_survives_a_collector_restart(
    collector_factory, prometheus_factory, tmp_path: Path
) -> None:
    collector = collector_factory()
    prom = prometheus_factory(scrape_self=False, scrape_configs=[collector_scrape_config(collector)])
    script = tmp_path / "app.py"
    script.write_text(APP)
    pushing = launch(
        [sys.executable, str(script)],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_SERVICE_NAME": "collector-app",
        },
        prometheus=False,
    )
    embedded = launch([sys.executable, str(script)])
    try:
        scraped = embedded.scrape()
        on_endpoint = {
            (name, tuple(sorted(k for k, _ in labels)))
            for (name, labels) in scraped.samples
            if name.startswith("covet_")
        }
        on_endpoint_names = {name for name, _ in on_endpoint}
        assert on_endpoint_names, "the embedded endpoint has no covet_* metric"
        result = prom.wait_for(
            '{__name__=~"covet_.+", job="collector-app"}',
            lambda r: {s["metric"]["__name__"] for s in r} >= on_endpoint_names,
            timeout=60,
        )
        at_prometheus = {
            (
                s["metric"]["__name__"],
                tuple(sorted(k for k in s["metric"] if k not in ("__name__", "job", "instance"))),
            )
            for s in result
        }
        assert at_prometheus == on_endpoint
        sdk_names = {d.name for d in CATALOGUE if d.source == "sdk"}
        produced = {name for name, _ in at_prometheus}
        assert produced, "no covet_* metric through the collector"
        assert {n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for n in produced} <= (
            sdk_names | {n + "_created" for n in sdk_names}
        )

        # collector stopped while the app runs: the app goes on; restarted: data resumes
        collector.stop()
        time.sleep(3)
        assert pushing.proc.poll() is None, pushing.output()
        collector.start()
        deadline = time.monotonic() + 30
        while True:
            text = httpx.get(collector.metrics_url, timeout=5).text
            samples = Samples(text)
            resumed = {
                n
                for (n, labels) in samples.samples
                if n.startswith("covet_") and ("job", "collector-app") in labels
            }
            if resumed >= on_endpoint_names:
                break
            assert time.monotonic() < deadline, f"data did not resume after the restart: {sorted(resumed)}"
            time.sleep(0.5)
        assert pushing.proc.poll() is None
        output = pushing.output()
        assert "Traceback" not in output, output
    finally:
        pushing.stop()
        embedded.stop()
