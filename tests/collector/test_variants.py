"""The scale-out variants on real binaries: agent -> gateway (load-balancing exporter) -> Prometheus, and
gateway -> Prometheus remote write."""

from __future__ import annotations

import pytest
from conftest import CONFIG, VARIANTS, collector_scrape_config
from harness import free_port

pytestmark = pytest.mark.slow

WANT = {"covet_cache_memory_usage_bytes", "covet_redis_clients_connected", "covet_host_memory_usage_bytes"}


def start_gateway(collector_factory, *overlays, env=None):
    grpc, http = free_port(), free_port()
    gateway = collector_factory(
        configs=(VARIANTS / "gateway.yaml", *overlays),
        env={
            "COVET_GATEWAY_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc}",
            "COVET_GATEWAY_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http}",
            **(env or {}),
        },
    )
    return gateway, grpc


def start_agent(collector_factory, redis_server, gateway_grpc: int):
    return collector_factory(
        configs=(CONFIG, VARIANTS / "agent.yaml"),
        env={
            "COVET_REDIS_ENDPOINT": redis_server.address,
            "COVET_GATEWAY_HOSTNAMES": f"[127.0.0.1:{gateway_grpc}]",
        },
    )


def test_agent_forwards_through_the_gateway_with_names_and_job_intact(
    collector_factory, redis_server, prometheus_factory
) -> None:
    gateway, grpc = start_gateway(collector_factory)
    start_agent(collector_factory, redis_server, grpc)
    prom = prometheus_factory(scrape_self=False, scrape_configs=[collector_scrape_config(gateway, "gateway")])
    result = prom.wait_for(
        '{__name__=~"covet_.+"}', lambda r: {s["metric"]["__name__"] for s in r} >= WANT, timeout=60
    )
    jobs = {s["metric"]["__name__"]: s["metric"]["job"] for s in result}
    assert jobs["covet_cache_memory_usage_bytes"] == "redis"
    assert jobs["covet_host_memory_usage_bytes"] == "node"


def test_gateway_remote_writes_into_a_store(collector_factory, redis_server, prometheus_factory) -> None:
    # Prometheus itself as the remote-write receiving store (Mimir/Thanos/VictoriaMetrics take the same)
    store = prometheus_factory(scrape_self=False, extra_args=["--web.enable-remote-write-receiver"])
    _, grpc = start_gateway(
        collector_factory,
        VARIANTS / "remote-write.yaml",
        env={"COVET_REMOTE_WRITE_URL": f"{store.url}/api/v1/write"},
    )
    start_agent(collector_factory, redis_server, grpc)
    result = store.wait_for(
        '{__name__=~"covet_.+"}', lambda r: {s["metric"]["__name__"] for s in r} >= WANT, timeout=90
    )
    labels = {s["metric"]["__name__"]: s["metric"] for s in result}
    assert labels["covet_cache_memory_usage_bytes"]["job"] == "redis"
    assert labels["covet_cache_memory_usage_bytes"]["instance"] == redis_server.address
