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


def shipped_rule_expressions() -> list[tuple[str, str]]:
    """(alert or record name, expression) of every rule in the shipped alerts/*.rules.yml."""
    import yaml

    out = []
    for path in sorted((CONFIG.parents[1] / "alerts").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out.append((rule.get("alert") or rule["record"], rule["expr"]))
    assert len(out) >= 25, "the shipped rules are missing"
    return out


# The gateway of the scale-out test writes to the store and, for comparison, serves the same data on its
# Prometheus exporter (a test-only overlay: the shipped remote-write.yaml replaces that exporter).
BOTH_EXPORTERS = "service: {pipelines: {metrics: {exporters: [prometheusremotewrite, prometheus]}}}\n"


def _label_sets(result: list[dict]) -> dict[str, set[tuple[tuple[str, str], ...]]]:
    out: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for sample in result:
        labels = dict(sample["metric"])
        name = labels.pop("__name__", "")  # expressions' results have no name
        if "le" in labels:
            # Prometheus 3 writes scraped bucket bounds as floats ("1.0"), remote write keeps "1":
            # the same bound (docs/collector.md); selectors on whole-number bounds must allow for it
            labels["le"] = repr(float(labels["le"]))
        out.setdefault(name, set()).add(tuple(sorted(labels.items())))
    return out


def test_victoriametrics_store_answers_with_the_names_and_labels_prometheus_has(
    collector_factory, redis_server, prometheus_factory, tmp_path
) -> None:
    """agent -> gateway -> remote write into VictoriaMetrics, a store users move to when one Prometheus
    is not enough: the catalogue's names arrive with exactly the labels Prometheus sees for the same
    data, from the receivers and from an app pushing OTLP."""
    import subprocess
    import sys

    from harness import VictoriaMetrics
    from test_end_to_end import SDK_APP

    store = VictoriaMetrics()
    try:
        store.start()
        both = tmp_path / "both-exporters.yaml"
        both.write_text(BOTH_EXPORTERS)
        gateway, grpc = start_gateway(
            collector_factory,
            VARIANTS / "remote-write.yaml",
            both,
            env={"COVET_REMOTE_WRITE_URL": store.remote_write_url},
        )
        agent = start_agent(collector_factory, redis_server, grpc)
        script = tmp_path / "sdk_app.py"
        script.write_text(SDK_APP)
        app = subprocess.Popen(
            [sys.executable, str(script), agent.otlp_endpoint, str(free_port())],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            prom = prometheus_factory(
                scrape_self=False, scrape_configs=[collector_scrape_config(gateway, "gateway")]
            )
            want = WANT | {"covet_http_requests_total", "covet_db_query_duration_seconds_bucket"}
            selector = '{__name__=~"covet_.+"}'
            in_store = store.wait_for(
                selector, lambda r: {s["metric"]["__name__"] for s in r} >= want, timeout=90
            )
            in_prom = prom.wait_for(
                selector, lambda r: {s["metric"]["__name__"] for s in r} >= want, timeout=90
            )
            store_sets, prom_sets = _label_sets(in_store), _label_sets(in_prom)
            for name in want:
                assert store_sets[name] == prom_sets[name], name
            assert store_sets["covet_http_requests_total"] == {
                (("instance", "sdk-app-1"), ("job", "sdk-app"), ("method", "GET"), ("route", "/items/{id}"),
                 ("status", "200"))
            }  # fmt: skip
            # the same PromQL gives the same answer on both (a ratio, as alert expressions use)
            expr = (
                'sum by (job) (rate(covet_db_query_duration_seconds_bucket{le="0.01"}[1m]))'
                " / sum by (job) (rate(covet_db_query_duration_seconds_count[1m]))"
            )
            ratio = store.wait_for(expr, timeout=60)
            assert [s["metric"] for s in ratio] == [{"job": "sdk-app"}]
            assert float(ratio[0]["value"][1]) == pytest.approx(0.5, abs=0.05)
            # every shipped alert and recording expression runs on the store, and where Prometheus
            # finds series for it, the store finds the same ones
            answered = 0
            for name, expr in shipped_rule_expressions():
                in_vm = _label_sets(store.query(expr))
                in_prometheus = _label_sets(prom.query(expr))
                if in_prometheus:
                    assert in_vm == in_prometheus, name
                    answered += 1
            print(f"shipped rule expressions with data on both stores: {answered}")
            assert answered >= 1  # at least one shipped expression has data from this traffic
        finally:
            app.terminate()
            app.wait(timeout=10)
    finally:
        store.cleanup()
