"""`covet-otel demo`: the README's first command, end to end, with its own local servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
