"""The `alembic` command in its own process, pushing OTLP to a real Prometheus: loaded by the
launcher, and by the env.py call; in-progress seen at Prometheus while a slow revision runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opentelemetry.util._importlib_metadata import entry_points

BIN = Path(sys.executable).parent
ENTRY_POINT = "covet_alembic = covet_otel.events.alembic:AlembicMetricsInstrumentor"


def process_env(prom, service: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COVET_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=prom.otlp_endpoint,
        OTEL_SERVICE_NAME=service,
        OTEL_METRIC_EXPORT_INTERVAL="300",
        **extra,
    )
    return env


@pytest.fixture
def launcher_entry_point(tmp_path) -> dict[str, str]:
    """Environment additions under which `opentelemetry-instrument` finds the covet_alembic
    instrumentor: none once pyproject.toml declares it, else a distribution of this test's own
    that declares the same entry point."""
    if list(entry_points(group="opentelemetry_instrumentor", name="covet_alembic")):
        return {}
    dist = tmp_path / "site" / "covet_alembic_entry_point-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: covet-alembic-entry-point\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text(f"[opentelemetry_instrumentor]\n{ENTRY_POINT}\n")
    return {"PYTHONPATH": str(tmp_path / "site")}


def series(prom, promql: str) -> dict[str, float]:
    return {r["metric"].get("outcome", ""): float(r["value"][1]) for r in prom.query(promql)}


def test_launcher_measures_alembic_and_in_progress_shows_while_it_runs(
    alembic_project, prometheus_factory, launcher_entry_point
) -> None:
    prom = prometheus_factory(scrape_self=False)
    env = process_env(prom, "migrate-launcher", COVET_TEST_SLOW_SECONDS="4", **launcher_entry_point)
    proc = subprocess.Popen(
        [str(BIN / "opentelemetry-instrument"), str(BIN / "alembic"), "-c", str(alembic_project.ini),
         "upgrade", "r3"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        running = prom.wait_for(
            'covet_migration_in_progress{job="migrate-launcher", migrator="alembic"} == 1',
            timeout=15,
            interval=0.2,
        )
        assert proc.poll() is None, "in-progress must be seen while the migration runs"
        started = float(
            prom.query('covet_migration_started_timestamp{job="migrate-launcher"}')[0]["value"][1]
        )
        assert time.time() - 15 < started <= time.time()
        assert running[0]["metric"]["migrator"] == "alembic"
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output

    prom.wait_for('covet_migration_in_progress{job="migrate-launcher"} == 0', timeout=10)
    assert series(prom, 'covet_migration_runs_total{job="migrate-launcher"}') == {"success": 1}
    assert series(prom, 'covet_migration_pending{job="migrate-launcher"}') == {"": 1}
    assert series(prom, 'covet_migration_duration_seconds_sum{job="migrate-launcher"}')["success"] >= 4


def test_one_call_in_env_py_measures_a_plain_alembic_command(alembic_project, prometheus_factory) -> None:
    prom = prometheus_factory(scrape_self=False)
    alembic = [str(BIN / "alembic"), "-c", str(alembic_project.ini)]
    env = process_env(prom, "migrate-env-py", COVET_TEST_ENV_PY_ENABLE="1")
    upgraded = subprocess.run(
        [*alembic, "upgrade", "r3"], env=env, capture_output=True, text=True, timeout=60
    )
    assert upgraded.returncode == 0, upgraded.stderr
    failed = subprocess.run(
        [*alembic, "upgrade", "head"], env=env, capture_output=True, text=True, timeout=60
    )
    assert failed.returncode == 1
    assert "already exists" in failed.stderr  # Alembic's own error, unchanged

    prom.wait_for('covet_migration_runs_total{job="migrate-env-py", outcome="failure"}', timeout=10)
    # each process is its own instance: sum across them as a dashboard does
    totals = prom.query('sum by (outcome) (covet_migration_runs_total{job="migrate-env-py"})')
    assert {r["metric"]["outcome"]: float(r["value"][1]) for r in totals} == {"success": 1, "failure": 1}
    pending = prom.query('covet_migration_pending{job="migrate-env-py"}')
    assert sorted(float(r["value"][1]) for r in pending) == [1, 1]  # after r3; unchanged by the failure


def test_short_run_on_the_embedded_endpoint_says_how_to_keep_its_metrics(
    alembic_project, launcher_entry_point
) -> None:
    """Issue 17, point 13: without OTLP the migration's figures die with the process; say so once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COVET_"))}
    env.update(OTEL_EXPORTER_PROMETHEUS_PORT="0", **launcher_entry_point)
    done = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), str(BIN / "alembic"), "-c", str(alembic_project.ini),
         "upgrade", "r2"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("covet-otel:")]
    assert len(notes) == 1, done.stderr
    assert notes[0].startswith(
        "covet-otel: this process recorded covet_migration_duration_seconds, covet_migration_runs_total "
        "on its embedded /metrics endpoint and ends "
    )
    assert notes[0].endswith(
        "they are lost. To keep them, set OTEL_EXPORTER_OTLP_ENDPOINT (pushed to a collector and "
        "flushed at exit), or run it as "
        f"`covet-otel job migrate -- alembic -c {alembic_project.ini} upgrade r2`."
    )
    # a process that recorded no job says nothing
    quiet = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "-c", "print('ok')"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert quiet.returncode == 0 and "covet-otel:" not in quiet.stderr
