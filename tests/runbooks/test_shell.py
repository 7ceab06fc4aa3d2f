"""The shell commands of the runbooks that talk to covet-otel's own parts, run as a user would:

- every ``covet-otel`` command line parses with the real CLI (read-only ones are run);
- every ``curl`` of the health endpoints runs, jq filter included, against a real health server with
  the built-in checks on a real PostgreSQL pool and Redis, with the token;
- every ``curl`` of the Prometheus or Alertmanager API and every ``amtool`` command runs against a
  real Prometheus (the shipped rules loaded) and Alertmanager.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from harness import Alertmanager, PostgreSQL, Prometheus, Redis, tools

from covet_otel.cli import build_parser
from covet_otel.health import (
    HealthRegistry,
    database_check,
    disk_check,
    error_rate_check,
    memory_check,
    pool_check,
    redis_check,
    serve,
)

from .markdown import Block, blocks, commands, runbook_files

REPO = Path(__file__).resolve().parents[2]
TOKEN = "runbook-token"
RULE_FILES = sorted((REPO / "alerts").rglob("*.rules.yml"))


@dataclass(frozen=True)
class Line:
    block: Block
    text: str

    @property
    def where(self) -> str:
        return f"{self.block.where} {self.text[:60]}"


def shell_lines(*markers: str) -> list[Line]:
    """Command lines of sh blocks (continuations joined) that mention one of ``markers``."""
    found = []
    for path in runbook_files():
        for block in blocks(path):
            if block.lang != "sh":
                continue
            for raw in block.text.replace("\\\n", " ").splitlines():
                line = raw.strip()
                if line and not line.startswith("#") and any(m in line for m in markers):
                    found.append(Line(block, line))
    return found


SH_BLOCKS = [b for path in runbook_files() for b in blocks(path) if b.lang == "sh"]
COVET_OTEL = [(b, argv) for b in SH_BLOCKS for argv in commands(b, "covet-otel")]
HEALTH = shell_lines("$APP_URL/health")
MONITORING = shell_lines("$PROM_URL", "$ALERTMANAGER_URL", "amtool ")


def run(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # no pipefail: the exit status is the last command's, so a grep that matches nothing fails
    return subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, timeout=60, check=False, env=env, cwd=REPO
    )


def test_there_are_commands() -> None:
    assert len(COVET_OTEL) >= 7
    assert len(HEALTH) >= 15
    assert len(MONITORING) >= 6


@pytest.mark.parametrize(("block", "argv"), COVET_OTEL, ids=[f"{b.where} {a[1]}" for b, a in COVET_OTEL])
def test_covet_otel_command_parses(block: Block, argv: list[str]) -> None:
    parser = build_parser()
    try:
        args = parser.parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"{block.where}: `{' '.join(argv)}` is not a valid covet-otel command")
    if args.command in ("settings", "catalog"):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip()


@pytest.fixture(scope="module")
def health_url(postgres: PostgreSQL, redis_server: Redis) -> Iterator[str]:
    """A standalone health server with every built-in check, the pool on an app loop of its own."""
    for program in ("jq", "curl"):
        if shutil.which(program) is None:
            tools.missing(program, "the runbooks' health and API commands use it")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def create_pool() -> asyncpg.Pool:
        return await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=4)

    pool = asyncio.run_coroutine_threadsafe(create_pool(), loop).result(timeout=30)
    registry = HealthRegistry()
    registry.add(database_check(pool))
    registry.add(pool_check(pool))
    registry.add(redis_check(url=redis_server.url))
    registry.add(disk_check("/"))
    registry.add(memory_check())
    registry.add(error_rate_check())
    server = serve(0, registry=registry, token=TOKEN)
    try:
        yield server.url
    finally:
        server.stop()
        asyncio.run_coroutine_threadsafe(pool.close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@pytest.mark.parametrize("line", HEALTH, ids=[h.where for h in HEALTH])
def test_health_command_runs(health_url: str, line: Line) -> None:
    result = run(line.text, {**os.environ, "APP_URL": health_url, "COVET_HEALTH_TOKEN": TOKEN})
    assert result.returncode == 0, f"{line.where}: {result.stderr}"
    output = result.stdout.strip()
    assert output, f"{line.where}: no output"
    # a jq path that names no check prints null: the runbook would point at nothing
    assert "null" not in output.splitlines(), f"{line.where}: {output}"


@pytest.fixture(scope="module")
def monitoring() -> Iterator[dict[str, str]]:
    for program in ("jq", "curl"):
        if shutil.which(program) is None:
            tools.missing(program, "the runbooks' API commands use it")
    alertmanager = Alertmanager()
    prometheus: Prometheus | None = None
    try:
        alertmanager.start()
        prometheus = Prometheus(
            rule_files=RULE_FILES,
            alertmanagers=[alertmanager.address],
            scrape_targets={"alertmanager": [alertmanager.address]},
        )
        prometheus.start()
        prometheus.wait_for('ALERTS{alertname="Watchdog"}', timeout=90)
        amtool_dir = str(tools.amtool().parent)
        yield {
            **os.environ,
            "PROM_URL": prometheus.url,
            "ALERTMANAGER_URL": alertmanager.url,
            "PATH": f"{amtool_dir}:{os.environ.get('PATH', '')}",
        }
    finally:
        if prometheus is not None:
            prometheus.cleanup()
        alertmanager.cleanup()


@pytest.mark.parametrize("line", MONITORING, ids=[m.where for m in MONITORING])
def test_monitoring_command_runs(monitoring: dict[str, str], line: Line) -> None:
    result = run(line.text, monitoring)
    assert result.returncode == 0, f"{line.where}: {result.stdout}{result.stderr}"
    assert result.stdout.strip() != "null", f"{line.where}: the jq path selects nothing"


def test_watchdog_routing_command_names_the_dead_mans_switch(monitoring: dict[str, str]) -> None:
    """The Watchdog runbook says its routing command shows the dead man's switch receiver: it does,
    for the shipped Alertmanager configuration."""
    line = next(m for m in MONITORING if "config routes test" in m.text)
    result = run(line.text, monitoring)
    assert result.stdout.strip() == "deadmans-switch", result.stdout + result.stderr
