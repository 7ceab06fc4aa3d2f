"""The harness starts real servers that really answer, and stop/start/pause/resume really act on them."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from harness import PostgreSQL, Prometheus, Redis, ToolMissingError, free_port, port_open, tools
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

# ---------------------------------------------------------------------------------------------------
# tools
# ---------------------------------------------------------------------------------------------------


def test_versions_are_pinned() -> None:
    pins = tools.versions()
    assert pins["PROMETHEUS_MODULE_VERSION"].startswith("v0.3"), "Prometheus 3.x module tags are v0.3MM.P"
    for key in ("ALERTMANAGER_VERSION", "VICTORIAMETRICS_VERSION", "POSTGRESQL_MAJOR"):
        assert pins[key], f"{key} is empty in tools/versions.env"


def test_missing_tool_fails_under_ci_and_skips_otherwise(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COVET_TOOLS_DIR", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ToolMissingError, match=r"scripts/install-tools\.sh"):
        tools.prometheus()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"scripts/install-tools\.sh"):
        tools.amtool()


def test_free_port_is_bindable_and_not_repeated() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    for port in list(ports)[:3]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
    ("name", "arg"),
    [
        ("prometheus", "--version"),
        ("promtool", "--version"),
        ("alertmanager", "--version"),
        ("amtool", "--version"),
    ],
)
def test_go_tool_reports_pinned_version(name: str, arg: str) -> None:
    out = subprocess.run([tools.go_tool(name), arg], capture_output=True, text=True, timeout=30, check=True)
    text = out.stdout + out.stderr
    if name in ("prometheus", "promtool"):
        module = tools.version("PROMETHEUS_MODULE_VERSION")  # v0.3MM.P -> 3.MM.P
        minor, patch = module.removeprefix("v0.").split(".", 1)
        expected = f"3.{int(minor) - 300}.{patch}"
    else:
        expected = tools.version("ALERTMANAGER_VERSION").removeprefix("v")
    assert f"version {expected}" in text, text


def test_victoria_metrics_reports_its_pinned_version() -> None:
    out = subprocess.run(
        [tools.victoria_metrics(), "-version"], capture_output=True, text=True, timeout=30, check=True
    )
    assert tools.version("VICTORIAMETRICS_VERSION") in out.stdout + out.stderr, out.stdout


# ---------------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------------


def test_postgres_answers_select_1(postgres: PostgreSQL) -> None:
    async def main() -> tuple[int, int]:
        conn = await asyncpg.connect(postgres.dsn, timeout=10)
        try:
            return await conn.fetchval("SELECT 1"), conn.get_server_version().major
        finally:
            await conn.close()

    one, major = asyncio.run(main())
    assert one == 1
    assert major == int(tools.version("POSTGRESQL_MAJOR"))
    assert postgres.dsn == f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"


def test_postgres_create_database(postgres: PostgreSQL) -> None:
    name = f"harness_{uuid.uuid4().hex[:8]}"
    dsn = postgres.create_database(name)

    async def main() -> str:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return await conn.fetchval("SELECT current_database()")
        finally:
            await conn.close()

    try:
        assert asyncio.run(main()) == name
    finally:
        postgres.drop_database(name)
    assert name not in postgres.psql("SELECT datname FROM pg_database").split()


def test_postgres_pause_resume_stop_start(fresh_postgres: PostgreSQL) -> None:
    pg = fresh_postgres
    pg.psql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
    port = pg.port

    async def fetch(timeout: float) -> int:
        conn = await asyncpg.connect(pg.dsn, timeout=timeout)
        try:
            return await conn.fetchval("SELECT v FROM kept", timeout=timeout)
        finally:
            await conn.close(timeout=timeout)

    pg.pause()
    assert pg.paused
    started = time.monotonic()
    with pytest.raises((TimeoutError, asyncio.TimeoutError)):
        asyncio.run(fetch(timeout=1.0))
    assert time.monotonic() - started < 10, "a frozen server hangs the client until its timeout"
    pg.resume()
    assert asyncio.run(fetch(timeout=10)) == 42

    async def open_connection_hangs_while_paused() -> None:
        conn = await asyncpg.connect(pg.dsn, timeout=10)
        try:
            assert await conn.fetchval("SELECT 1") == 1
            pg.pause()  # the backend serving this connection is frozen too, not only the postmaster
            try:
                with pytest.raises((TimeoutError, asyncio.TimeoutError)):
                    await conn.fetchval("SELECT v FROM kept", timeout=1.0)
            finally:
                pg.resume()
        finally:
            conn.terminate()

    asyncio.run(open_connection_hangs_while_paused())

    pg.stop()
    assert not pg.running
    assert not port_open("127.0.0.1", port)
    with pytest.raises(OSError):
        asyncio.run(fetch(timeout=2))

    pg.start()
    assert pg.port == port
    assert asyncio.run(fetch(timeout=10)) == 42, "data directory survives a restart"


# ---------------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------------


def test_redis_answers_ping(redis_server: Redis) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        assert client.ping() is True
        key = f"harness:{uuid.uuid4().hex}"
        client.set(key, "v", ex=60)
        assert client.get(key) == b"v"
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()


def test_redis_pause_resume_stop_start(fresh_redis: Redis) -> None:
    server = fresh_redis
    port = server.port
    client = redis.Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.set("k", "before")

        server.pause()
        with pytest.raises(redis.exceptions.TimeoutError):
            client.ping()
        server.resume()
        assert client.ping() is True
        assert client.get("k") == b"before"

        server.stop()
        assert not port_open("127.0.0.1", port)
        with pytest.raises(redis.exceptions.ConnectionError):
            client.ping()

        server.start()
        assert server.port == port
        assert client.ping() is True
        assert client.get("k") is None, "no persistence: a restarted Redis is empty"

        server.kill()  # a crash: SIGKILL, no shutdown
        assert not server.running
        with pytest.raises(redis.exceptions.ConnectionError):
            client.ping()
        server.start()
        assert client.ping() is True
    finally:
        client.close()


def test_cleanup_stops_process_and_removes_workdir() -> None:
    server = Redis()
    server.start()
    pid, workdir = server.pid, server.workdir
    assert pid is not None and workdir.is_dir()
    server.pause()
    server.cleanup()  # a paused server is resumed, then stopped
    assert not workdir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    server.cleanup()  # idempotent


# ---------------------------------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------------------------------


def test_prometheus_scrapes_itself(prometheus_factory) -> None:
    prom = prometheus_factory()
    result = prom.wait_for('up{job="prometheus"}', lambda r: len(r) == 1 and r[0]["value"][1] == "1")
    assert result[0]["metric"]["instance"] == prom.address
    with httpx.Client(trust_env=False) as client:
        build = client.get(f"{prom.url}/api/v1/status/buildinfo").json()["data"]
    assert build["version"].startswith("3."), build


def test_prometheus_accepts_otlp_push(prometheus_factory) -> None:
    prom = prometheus_factory(scrape_self=False)
    results: list[MetricExportResult] = []

    class RecordingExporter(OTLPMetricExporter):
        def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
            result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            results.append(result)
            return result

    marker = uuid.uuid4().hex[:12]
    reader = PeriodicExportingMetricReader(
        RecordingExporter(endpoint=prom.otlp_metrics_url, timeout=10), export_interval_millis=3_600_000
    )
    provider = MeterProvider(
        resource=Resource.create({"service.name": "harness-test", "service.instance.id": marker}),
        metric_readers=[reader],
    )
    try:
        counter = provider.get_meter("harness").create_counter("harness_otlp_probe", description="probe")
        counter.add(5, {"marker": marker})
        assert provider.force_flush(timeout_millis=15_000)
    finally:
        provider.shutdown()
    assert results and results[0] is MetricExportResult.SUCCESS, results

    result = prom.wait_for(f'harness_otlp_probe_total{{marker="{marker}"}}', timeout=20)
    assert len(result) == 1
    sample = result[0]
    assert float(sample["value"][1]) == 5.0
    assert sample["metric"]["job"] == "harness-test"
    assert sample["metric"]["instance"] == marker


def test_prometheus_rejects_bad_promql(prometheus_factory) -> None:
    from harness import PromQLError

    prom = prometheus_factory(scrape_self=False)
    with pytest.raises(PromQLError, match="bad_data"):
        prom.query("sum(")


def test_promtool_check_config_and_rules(tmp_path: Path) -> None:
    good_rules = tmp_path / "good.rules.yml"
    good_rules.write_text(
        json.dumps(
            {"groups": [{"name": "g", "rules": [{"record": "job:up:sum", "expr": "sum by (job) (up)"}]}]}
        )
    )
    bad_rules = tmp_path / "bad.rules.yml"
    bad_rules.write_text(json.dumps({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "sum("}]}]}))

    prom = Prometheus(rule_files=[good_rules], workdir=tmp_path / "prom")
    try:
        config = prom.write_config()
        ok = subprocess.run(
            [tools.promtool(), "check", "config", config], capture_output=True, text=True, timeout=60
        )
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "SUCCESS" in ok.stdout + ok.stderr

        prom.rule_files = [str(bad_rules)]
        prom.write_config()
        bad = subprocess.run(
            [tools.promtool(), "check", "config", config], capture_output=True, text=True, timeout=60
        )
        assert bad.returncode != 0
        assert "bad.rules.yml" in bad.stdout + bad.stderr
    finally:
        prom.cleanup()


def test_prometheus_stop_start_same_port(prometheus_factory) -> None:
    prom = prometheus_factory()
    port = prom.port
    prom.wait_for('up{job="prometheus"} == 1')
    prom.stop()
    assert not port_open("127.0.0.1", port)
    prom.scrape_targets = {"extra": [prom.address]}  # the configuration is rewritten on every start
    prom.start()
    assert prom.port == port
    # the TSDB survives: the series scraped before the restart is still there
    assert prom.wait_for('count_over_time(up{job="prometheus"}[10m]) >= 1')
    assert prom.wait_for('up{job="extra"} == 1')


# ---------------------------------------------------------------------------------------------------
# Alertmanager
# ---------------------------------------------------------------------------------------------------


def test_alertmanager_ready_and_check_config(alertmanager_factory, tmp_path: Path) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: devnull\n  group_wait: 0s\nreceivers:\n  - name: devnull\n", encoding="utf-8"
    )
    check = subprocess.run(
        [tools.amtool(), "check-config", config], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout

    broken = tmp_path / "broken.yml"
    broken.write_text("route:\n  receiver: nowhere\nreceivers: []\n", encoding="utf-8")
    bad = subprocess.run([tools.amtool(), "check-config", broken], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0

    am = alertmanager_factory(config)
    with httpx.Client(trust_env=False, timeout=5) as client:
        assert client.get(f"{am.url}/-/ready").status_code == 200
        status = client.get(f"{am.url}/api/v2/status").json()
    assert "devnull" in status["config"]["original"]
    am.post_alerts([{"labels": {"alertname": "HarnessPosted", "severity": "info"}}])
    assert am.wait_for_alert("HarnessPosted", timeout=10)["status"]["state"] == "active"


def test_alert_flows_from_prometheus_rule_to_alertmanager(
    prometheus_factory, alertmanager_factory, tmp_path: Path
) -> None:
    am = alertmanager_factory()
    rules = tmp_path / "rules.yml"
    rules.write_text(
        json.dumps(
            {
                "groups": [
                    {
                        "name": "harness",
                        "interval": "1s",
                        "rules": [
                            {"alert": "HarnessAlwaysFiring", "expr": "vector(1)", "labels": {"x": "y"}}
                        ],
                    }
                ]
            }
        )
    )
    prom = prometheus_factory(scrape_self=False, rule_files=[rules], alertmanagers=[am.address])
    prom.wait_for('ALERTS{alertname="HarnessAlwaysFiring", alertstate="firing"}')
    alert = am.wait_for_alert("HarnessAlwaysFiring", timeout=30)
    assert alert["labels"]["x"] == "y"


def test_alertmanager_pause_resume(alertmanager_factory) -> None:
    am = alertmanager_factory()
    am.pause()
    with httpx.Client(trust_env=False, timeout=1) as client:
        with pytest.raises(httpx.TimeoutException):
            client.get(f"{am.url}/-/ready")
        am.resume()
        assert client.get(f"{am.url}/-/ready").status_code == 200


def _process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")  # a zombie waiting for its new parent to reap it is gone as a server


def test_servers_die_with_a_killed_test_process() -> None:
    script = (
        "import time\n"
        "from harness import Redis\n"
        "r = Redis()\n"
        "r.start()\n"
        "print(r.pid, r.workdir, flush=True)\n"
        "time.sleep(120)\n"
    )
    tests_dir = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": tests_dir + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pid_text, workdir_text = proc.stdout.readline().split()
    finally:
        proc.kill()  # SIGKILL: no atexit, no fixture teardown
        proc.wait()
        proc.stdout.close()
    pid, workdir = int(pid_text), Path(workdir_text)
    deadline = time.monotonic() + 10
    while not _process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _process_gone(pid), "the server outlived the process that started it"
    assert workdir.exists()

    from harness import servers

    servers._swept = False
    servers._sweep_stale_workdirs()  # what the next harness user does on its first server
    assert not workdir.exists()
