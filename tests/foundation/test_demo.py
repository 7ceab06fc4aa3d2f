"""`covet-otel demo`: the README's first command, end to end, with its own local servers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from covet_fixtures import free_tcp_port
from harness import tools


def _demo(*args: str) -> tuple[subprocess.CompletedProcess, int]:
    """Run `covet-otel demo` on free ports; returns the finished process and its metrics port."""
    port, metrics_port = free_tcp_port(), free_tcp_port()
    cli = str(Path(sys.executable).with_name("covet-otel"))
    result = subprocess.run(
        [cli, "demo", *args, "--port", str(port), "--metrics-port", str(metrics_port)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result, metrics_port


def test_demo_starts_servers_drives_traffic_and_summarises_what_it_measured() -> None:
    tools.postgres_bin_dir()  # under CI=true a missing server is a failure, as everywhere
    tools.redis_server()
    result, metrics_port = _demo("--duration", "4", "--rps", "40")
    out = result.stdout
    assert "started a local PostgreSQL" in out and "started a local Redis" in out
    assert f"metrics:       http://127.0.0.1:{metrics_port}/metrics" in out
    assert "instrumented:  asyncpg, redis, starlette" in out
    summary = out.split("covet_* series at", 1)[1]
    for group, metric in [
        ("database", "covet_db_query_duration_seconds"),
        ("cache", "covet_cache_operation_duration_seconds"),
        ("http", "covet_http_requests_total"),
        ("health", "covet_health_check_status"),
        ("system", "covet_process_memory_rss_bytes"),
    ]:
        assert f"  {group}: " in summary and metric in summary, (group, summary)


def test_demo_without_servers_says_what_it_skipped() -> None:
    result, _ = _demo("--duration", "1", "--no-local-servers")
    assert "started a local" not in result.stdout
    assert "without a database and Redis, /items answers 503" in result.stdout
    assert "503:" in result.stdout


# -- issue 17, points 14 and 15: every exit path cleans up; the printed health URL answers ---------


def _demo_dirs(pid: int) -> list[str]:
    import glob
    import tempfile

    return glob.glob(f"{tempfile.gettempdir()}/covet-demo-*-{pid}-*")


def test_a_busy_port_is_one_line_naming_the_port_and_the_flag(tmp_path: Path) -> None:
    import os
    import socket
    import tempfile

    # a folder a killed demo left behind (its pid cannot be alive: above the kernel's pid_max)
    stale = Path(tempfile.mkdtemp(prefix="covet-demo-pg-99999999-"))
    (stale / "data").mkdir()
    cli = str(Path(sys.executable).with_name("covet-otel"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [cli, "demo", "--port", str(port), "--metrics-port", "0", "--duration", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COVET_"))},
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"covet-otel demo: port {port} on 127.0.0.1 is in use; pass --port with a free port "
        "(e.g. --port 0 for any)\n"
    )
    assert result.stdout == ""  # nothing was started, so nothing to stop or summarise
    assert not stale.exists()


def _start_demo() -> tuple[subprocess.Popen, list[str]]:
    import os

    tools.postgres_bin_dir()
    tools.redis_server()
    cli = str(Path(sys.executable).with_name("covet-otel"))
    proc = subprocess.Popen(
        [cli, "demo", "--port", "0", "--metrics-port", "0", "--duration", "0", "--rps", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COVET_"))},
    )
    lines: list[str] = []
    while True:
        line = proc.stdout.readline()
        assert line, f"the demo ended early: {''.join(lines)} {proc.stderr.read()}"
        lines.append(line)
        if line.startswith("instrumented:"):
            return proc, lines


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_everything_and_prints_the_summary(signum: int) -> None:
    import httpx
    import psutil

    proc, lines = _start_demo()
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
        assert {c.name() for c in children} >= {"postgres", "redis-server"}
        assert len(_demo_dirs(proc.pid)) == 2
        # point 15: the health URL printed first answers itself, no redirect
        health_url = next(line for line in lines if line.startswith("health:")).split()[1]
        response = httpx.get(health_url, timeout=10, follow_redirects=False)
        assert response.status_code in (200, 503), response
        assert response.headers["content-type"] == "application/health+json"
        assert response.json()["status"] in ("pass", "warn", "fail")
        time.sleep(2)  # some traffic
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name}" in out
    assert "sent " in out and "covet_* series at http://127.0.0.1:" in out
    assert "  http: " in out.split("covet_* series at", 1)[1]
    assert "Traceback" not in err, err
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert _demo_dirs(proc.pid) == []
