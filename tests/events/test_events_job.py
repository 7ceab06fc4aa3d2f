"""`covet-otel job backup`: a real pg_dump, metrics pushed over OTLP to a real Prometheus."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import tools

COVET_OTEL = str(Path(sys.executable).with_name("covet-otel"))


def job_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COVET_"))}
    env.update(extra)
    return env


def pg_dump(postgres, *args: str) -> list[str]:
    return [
        str(tools.postgres_bin_dir() / "pg_dump"),
        "-h", postgres.host, "-p", str(postgres.port), "-U", postgres.user,
        *args,
    ]  # fmt: skip


def value(result: list[dict]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


@pytest.fixture
def shop_database(postgres):
    postgres.drop_database("shop")
    postgres.create_database("shop")
    postgres.psql(
        "CREATE TABLE orders (id serial PRIMARY KEY, note text);"
        "INSERT INTO orders (note) SELECT repeat('x', 100) FROM generate_series(1, 2000);",
        database="shop",
    )
    yield "shop"
    postgres.drop_database("shop")


def test_pg_dump_wrapped_by_the_job_pushes_its_metrics_before_exiting(
    postgres, shop_database, prometheus_factory, tmp_path
) -> None:
    prom = prometheus_factory(scrape_self=False)
    output = tmp_path / "shop.dump"
    started = time.time()
    # An export interval far longer than the job: only the flush at exit can deliver the points.
    env = job_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=prom.otlp_endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="600000",
        OTEL_SERVICE_NAME="backup-job",
    )
    done = subprocess.run(
        [COVET_OTEL, "job", "backup", "--name", "nightly", "--output", str(output), "--",
         *pg_dump(postgres, "-Fp", "-f", str(output), shop_database)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    finished = time.time()
    assert done.returncode == 0, done.stderr
    size = output.stat().st_size
    assert size > 200_000  # the 2000 rows of 100 characters are in it

    # the process has exited: whatever Prometheus has now came from the flush before exit
    selector = '{job="backup-job", backup="nightly"}'
    assert value(prom.wait_for(f"covet_backup_size_bytes{selector}", timeout=10)) == size
    assert started <= value(prom.query(f"covet_backup_last_success_timestamp{selector}")) <= finished
    runs = prom.query(f"covet_backup_runs_total{selector}")
    assert [(r["metric"]["outcome"], r["value"][1]) for r in runs] == [("success", "1")]
    assert value(prom.query('covet_backup_duration_seconds_count{job="backup-job", outcome="success"}')) == 1
    names = {r["metric"]["__name__"] for r in prom.query('{job="backup-job"}')}
    # a job does not report host figures: those come from the long-running processes
    assert names == {
        "covet_backup_size_bytes",
        "covet_backup_last_success_timestamp",
        "covet_backup_runs_total",
        "covet_backup_duration_seconds_bucket",
        "covet_backup_duration_seconds_count",
        "covet_backup_duration_seconds_sum",
        "target_info",
    }


def test_a_failing_dump_records_a_failure_and_returns_its_exit_code(
    postgres, prometheus_factory, tmp_path
) -> None:
    prom = prometheus_factory(scrape_self=False)
    output = tmp_path / "missing.dump"
    env = job_env(OTEL_EXPORTER_OTLP_ENDPOINT=prom.otlp_endpoint, OTEL_SERVICE_NAME="failing-backup")
    done = subprocess.run(
        [COVET_OTEL, "job", "backup", "--name", "nightly", "--output", str(output), "--",
         *pg_dump(postgres, "-Fc", "-f", str(output), "no_such_database")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert 'database "no_such_database" does not exist' in done.stderr  # the command's own stderr

    runs = prom.wait_for('covet_backup_runs_total{job="failing-backup"}', timeout=10)
    assert [(r["metric"]["outcome"], r["value"][1]) for r in runs] == [("failure", "1")]
    assert prom.query('covet_backup_last_success_timestamp{job="failing-backup"}') == []
    assert prom.query('covet_backup_size_bytes{job="failing-backup"}') == []


def test_exit_codes_pass_through_and_a_missing_command_is_127(tmp_path) -> None:
    env = job_env()  # no endpoint: the job still runs, and says its metrics go nowhere
    cases = {
        ("sh", "-c", "exit 7"): 7,
        ("sh", "-c", "kill -TERM $$"): 128 + 15,
        ("no-such-backup-tool",): 127,
        ("true",): 0,
    }
    for command, expected in cases.items():
        done = subprocess.run(
            [COVET_OTEL, "job", "backup", "--name", "codes", "--", *command],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == expected, (command, done.stderr)
        assert "OTEL_EXPORTER_OTLP_ENDPOINT is not set" in done.stderr


def test_bad_arguments_are_usage_errors_before_anything_runs(tmp_path) -> None:
    marker = tmp_path / "ran"
    for args in (["--name", "/var/backups/x", "--", "touch", str(marker)], ["--name", "ok"]):
        done = subprocess.run(
            [COVET_OTEL, "job", "backup", *args], env=job_env(), capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 2, done.stderr
    assert not marker.exists()


def test_bad_telemetry_settings_do_not_stop_the_backup(tmp_path) -> None:
    output = tmp_path / "out.txt"
    done = subprocess.run(
        [sys.executable, "-m", "covet_otel.cli_job", "backup", "--name", "robust", "--output", str(output),
         "--", "sh", "-c", f"echo ok > {output}"],
        env=job_env(COVET_MAX_SERIES_PER_METRIC="many", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9"),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0
    assert output.read_text() == "ok\n"
    assert "COVET_MAX_SERIES_PER_METRIC='many' is not valid" in done.stderr
    assert "metrics disabled for this job" in done.stderr


def test_sigterm_to_the_wrapper_reaches_the_command(tmp_path) -> None:
    marker = tmp_path / "got-term"
    script = f"trap 'echo term > {marker}; exit 143' TERM; echo ready; sleep 30 & wait"
    proc = subprocess.Popen(
        [COVET_OTEL, "job", "backup", "--name", "stopped", "--", "sh", "-c", script],
        env=job_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.terminate()
        assert proc.wait(timeout=20) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    assert marker.read_text() == "term\n"


def test_job_migrate_records_runs_and_exit_codes(prometheus_factory) -> None:
    prom = prometheus_factory(scrape_self=False)
    env = job_env(OTEL_EXPORTER_OTLP_ENDPOINT=prom.otlp_endpoint, OTEL_SERVICE_NAME="deploy")
    ok = subprocess.run(
        [COVET_OTEL, "job", "migrate", "--migrator", "django", "--", "sh", "-c", "sleep 0.2"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    failed = subprocess.run(
        [COVET_OTEL, "job", "migrate", "--migrator", "django", "--", "sh", "-c", "exit 4"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert (ok.returncode, failed.returncode) == (0, 4)

    prom.wait_for('covet_migration_runs_total{job="deploy", outcome="failure"}', timeout=10)
    totals = prom.query('sum by (outcome) (covet_migration_runs_total{job="deploy", migrator="django"})')
    assert {r["metric"]["outcome"]: float(r["value"][1]) for r in totals} == {"success": 1, "failure": 1}
    in_progress = prom.query('covet_migration_in_progress{job="deploy"}')
    assert [float(r["value"][1]) for r in in_progress] == [0, 0]  # both ended
    assert len(prom.query('covet_migration_last_success_timestamp{job="deploy"}')) == 1
