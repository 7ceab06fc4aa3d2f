"""`otelcol-covet validate` on every shipped config, and the collector's own message on a bad one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import CONFIG, POSTGRESQL, VARIANTS, components

# every config users are told to run, as the --config list they pass
SHIPPED: dict[str, tuple[Path, ...]] = {
    "default": (CONFIG,),
    "agent": (CONFIG, VARIANTS / "agent.yaml"),
    "gateway": (VARIANTS / "gateway.yaml",),
    "gateway+remote-write": (VARIANTS / "gateway.yaml", VARIANTS / "remote-write.yaml"),
    "default+postgresql": (CONFIG, POSTGRESQL),
}


def validate(binary: Path, *configs: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    args = [str(binary), "validate"]
    for config in configs:
        args += ["--config", str(config)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)


def test_every_variant_file_is_covered() -> None:
    shipped = {path.name for configs in SHIPPED.values() for path in configs}
    assert {p.name for p in VARIANTS.glob("*.yaml")} <= shipped


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_config_validates(otelcol: Path, name: str) -> None:
    result = validate(otelcol, *SHIPPED[name])
    assert result.returncode == 0, result.stderr


def test_the_build_contains_only_what_the_configs_use(otelcol: Path) -> None:
    have = components(otelcol)
    assert {"otlp", "redis", "host_metrics", "prometheus"} <= have["receivers"]
    assert {"memory_limiter", "batch", "transform", "filter", "resource"} <= have["processors"]
    assert {"prometheus", "otlp_http", "prometheus_remote_write", "load_balancing"} <= have["exporters"]
    assert "health_check" in have["extensions"]


MALFORMED = {
    "undefined-exporter": (
        "receivers: {otlp: {protocols: {http: {}}}}\n"
        "exporters: {otlphttp/other: {endpoint: 'http://127.0.0.1:1'}}\n"
        "service: {pipelines: {metrics: {receivers: [otlp], exporters: [prometheus]}}}\n",
        'references exporter "prometheus" which is not configured',
    ),
    "component-not-in-the-build": (
        "receivers: {otlp: {protocols: {http: {}}}}\n"
        "exporters: {debug: {}}\n"
        "service: {pipelines: {metrics: {receivers: [otlp], exporters: [debug]}}}\n",
        'unknown type: "debug"',
    ),
    "bad-memory-limit": (
        "receivers: {otlp: {protocols: {http: {}}}}\n"
        "processors: {memory_limiter: {check_interval: 1s, limit_mib: lots}}\n"
        "exporters: {prometheus: {endpoint: '127.0.0.1:0'}}\n"
        "service: {pipelines: {metrics: {receivers: [otlp], processors: [memory_limiter],"
        " exporters: [prometheus]}}}\n",
        "limit_mib",
    ),
    "bad-ottl": (
        "receivers: {otlp: {protocols: {http: {}}}}\n"
        "processors: {transform: {metric_statements: [{context: metric,"
        ' statements: [\'set(metric.name, "x") where metric.nme == "y"\']}]}}\n'
        "exporters: {prometheus: {endpoint: '127.0.0.1:0'}}\n"
        "service: {pipelines: {metrics: {receivers: [otlp], processors: [transform],"
        " exporters: [prometheus]}}}\n",
        "nme",
    ),
    "bad-translation-strategy": (
        "receivers: {otlp: {protocols: {http: {}}}}\n"
        "exporters: {prometheus: {endpoint: '127.0.0.1:0', translation_strategy: Sometimes}}\n"
        "service: {pipelines: {metrics: {receivers: [otlp], exporters: [prometheus]}}}\n",
        "invalid translation_strategy: Sometimes",
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_config_fails_with_the_collectors_message(otelcol: Path, tmp_path: Path, name: str) -> None:
    text, message = MALFORMED[name]
    config = tmp_path / f"{name}.yaml"
    config.write_text(text)
    result = validate(otelcol, config)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_a_typo_in_the_shipped_config_is_caught(otelcol: Path, tmp_path: Path) -> None:
    broken = tmp_path / "config.yaml"
    text = CONFIG.read_text()
    broken.write_text(text.replace("[memory_limiter, batch]", "[memory_limiter, bacth]"))
    result = validate(otelcol, broken)
    assert result.returncode != 0
    assert 'references processor "bacth" which is not configured' in result.stderr, result.stderr
