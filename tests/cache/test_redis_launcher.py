"""A redis-py app under `opentelemetry-instrument`: the cache group at its embedded /metrics."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_redis_sync import calls, hits, misses, nonzero

APP = str(Path(__file__).parent / "apps" / "redis_app.py")


@pytest.mark.parametrize("spans", [False, True], ids=["metrics-only", "with-upstream-spans"])
def test_app_under_launcher_reports_cache_group(redis_server, instrumented_app, spans) -> None:
    env = {"REDIS_HOST": redis_server.host, "REDIS_PORT": str(redis_server.port)}
    if spans:
        env["OTEL_TRACES_EXPORTER"] = "console"  # the upstream RedisInstrumentor's spans, printed
    else:
        env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = "redis"  # upstream off, covet_redis on
    app = instrumented_app([sys.executable, APP], env=env)
    # read until the app says its workload is done (stopping it earlier could cut that line off)
    early = []  # span output may come first
    for line in app.proc.stdout:
        early.append(line)
        if line.strip() == "workload done":
            break
    samples = app.scrape()
    assert calls(samples, "SET") == 2
    assert calls(samples, "GET") == 3  # sync hit, sync miss, asyncio hit
    assert calls(samples, "MGET") == 1
    assert calls(samples, "MULTI") == 1
    assert calls(samples, "FLUSHDB") == 1
    assert (hits(samples, "GET"), misses(samples, "GET")) == (3, 2)
    assert (hits(samples, "MGET"), misses(samples, "MGET")) == (2, 1)
    assert nonzero(samples, "covet_cache_pipeline_commands_total") == {"GET": 2}
    output = "".join(early) + app.output()
    assert "workload done" in output
    # spans only when the upstream instrumentor ran: one per command, one for the transaction
    assert output.count('"name": "GET"') == (3 if spans else 0)
    assert output.count('"name": "GET GET"') == (1 if spans else 0)


def test_covet_redis_can_be_disabled_alone(redis_server, instrumented_app) -> None:
    env = {
        "REDIS_HOST": redis_server.host,
        "REDIS_PORT": str(redis_server.port),
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "covet_redis",
        "OTEL_TRACES_EXPORTER": "console",
    }
    app = instrumented_app([sys.executable, APP], env=env)
    early = []  # lines before the marker (span output may come first)
    for line in app.proc.stdout:
        if line.strip() == "workload done":
            break
        early.append(line)
    samples = app.scrape()
    assert not [name for name in samples.names() if name.startswith("covet_cache_")]
    assert samples.names()  # the endpoint itself still serves the other groups
    output = "".join(early) + app.output()
    assert output.count('"name": "GET"') == 3  # upstream spans unaffected
