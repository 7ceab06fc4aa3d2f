"""The shipped config against the metric catalogue: every collector-sourced metric is renamed from its
receiver (or postgres_exporter series) name to its catalogue OTel name, its unit pinned and its labels
limited to the catalogue's."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from conftest import CONFIG, POSTGRESQL, VARIANTS

from covet_otel.catalogue import CATALOGUE

COLLECTOR_METRICS = [d for d in CATALOGUE if d.source == "collector"]
ENV_REF = re.compile(r"^\$\{env:[A-Z0-9_]+(:-[^}]*)?\}$")


def load(path=CONFIG) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


# where each source's renames live: (config file, transform processor)
TRANSFORMS = {
    "receiver": (CONFIG, "transform/covet_names"),
    "postgres_exporter": (POSTGRESQL, "transform/postgresql_names"),
}


def source_name(notes: str) -> tuple[str, str]:
    """(source kind, name at the source) from notes such as 'receiver: redis.memory.used'."""
    match = re.search(r"(receiver|postgres_exporter): ([\w.]+)", notes)
    assert match, (
        f"catalogue notes without 'receiver: <otel name>' or 'postgres_exporter: <series>': {notes!r}"
    )
    return match.group(1), match.group(2)


def statements(config: dict[str, Any], context: str, processor: str = "transform/covet_names") -> list[str]:
    groups = config["processors"][processor]["metric_statements"]
    return [s for g in groups if g["context"] == context for s in g["statements"]]


def test_there_are_collector_metrics() -> None:
    assert len(COLLECTOR_METRICS) >= 10


@pytest.mark.parametrize("metric", COLLECTOR_METRICS, ids=lambda d: d.name)
def test_each_collector_metric_is_renamed_unit_pinned_and_label_guarded(metric) -> None:
    kind, receiver = source_name(metric.notes)
    path, processor = TRANSFORMS[kind]
    config = load(path)
    metric_stmts = statements(config, "metric", processor)
    datapoint_stmts = statements(config, "datapoint", processor)
    assert f'set(metric.name, "{metric.otel_name}") where metric.name == "{receiver}"' in metric_stmts
    assert f'set(metric.unit, "{metric.unit}") where metric.name == "{metric.otel_name}"' in metric_stmts
    keys = ", ".join(f'"{name}"' for name in metric.label_names)
    assert (
        f'keep_keys(datapoint.attributes, [{keys}]) where metric.name == "{metric.otel_name}"'
        in datapoint_stmts
    )


@pytest.mark.parametrize("source", sorted(TRANSFORMS))
def test_the_transform_has_nothing_but_catalogue_metrics(source: str) -> None:
    path, processor = TRANSFORMS[source]
    config = load(path)
    names = {d.otel_name for d in COLLECTOR_METRICS if source_name(d.notes)[0] == source}
    for stmt in statements(config, "metric", processor) + statements(config, "datapoint", processor):
        if "where metric.name" not in stmt:
            continue  # the datname -> database copy applies to every PostgreSQL metric
        target = re.search(r'where metric\.name == "([^"]+)"', stmt).group(1)
        if stmt.startswith("set(metric.name"):
            target = re.search(r'set\(metric\.name, "([^"]+)"\)', stmt).group(1)
        assert target in names, stmt


def test_pipelines_start_with_memory_limiter_and_end_with_batch() -> None:
    for path in (CONFIG, VARIANTS / "gateway.yaml", POSTGRESQL):
        for name, pipeline in load(path)["service"]["pipelines"].items():
            processors = pipeline["processors"]
            assert processors[0] == "memory_limiter", (path.name, name)
            assert processors[-1] == "batch", (path.name, name)


def test_receiver_pipelines_rename_then_drop_the_rest() -> None:
    pipelines = load()["service"]["pipelines"]
    for name in ("metrics/redis", "metrics/host"):
        processors = pipelines[name]["processors"]
        assert processors.index("transform/covet_names") < processors.index("filter/covet_only")
    processors = load(POSTGRESQL)["service"]["pipelines"]["metrics/postgresql"]["processors"]
    assert processors.index("transform/postgresql_names") < processors.index("filter/covet_only")
    assert load()["processors"]["filter/covet_only"]["metrics"]["metric"] == [
        'not IsMatch(metric.name, "^covet\\\\.")'
    ]


@pytest.mark.parametrize("path", [CONFIG, VARIANTS / "gateway.yaml"], ids=lambda p: p.name)
def test_prometheus_exporter_pins_the_name_translation(path) -> None:
    exporter = load(path)["exporters"]["prometheus"]
    assert exporter["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert exporter["without_scope_info"] is True
    # resource attributes stay on target_info, so labels match the app's embedded endpoint
    assert "resource_to_telemetry_conversion" not in exporter
    assert "resource_constant_labels" not in exporter


def test_remote_write_pins_the_name_translation() -> None:
    exporter = load(VARIANTS / "remote-write.yaml")["exporters"]["prometheusremotewrite"]
    assert exporter["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert exporter["disable_scope_info"] is True  # label sets as on the Prometheus exporter


def _walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    else:
        yield path, node


@pytest.mark.parametrize("path", [CONFIG, POSTGRESQL, *sorted(VARIANTS.glob("*.yaml"))], ids=lambda p: p.name)
def test_endpoints_and_credentials_come_from_the_environment(path) -> None:
    for key, value in _walk(load(path)):
        leaf = key.rsplit(".", 1)[-1]
        if leaf in ("endpoint", "password", "username", "hostnames", "port", "host", "targets[0]"):
            assert isinstance(value, str) and ENV_REF.match(value.strip('"')), (
                f"{path.name}: {key} = {value!r}"
            )


def test_postgresql_scrape_keeps_only_what_the_catalogue_names() -> None:
    """The keep regex of the scrape lists exactly the postgres_exporter series the catalogue renames."""
    scrape = load(POSTGRESQL)["receivers"]["prometheus/postgresql"]["config"]["scrape_configs"][0]
    keep = next(r for r in scrape["metric_relabel_configs"] if r["action"] == "keep")
    wanted = {
        source_name(d.notes)[1] for d in COLLECTOR_METRICS if source_name(d.notes)[0] == "postgres_exporter"
    }
    pattern = re.compile(f"^(?:{keep['regex']})$")
    assert all(pattern.match(name) for name in wanted), sorted(n for n in wanted if not pattern.match(n))
    assert not pattern.match("pg_settings_shared_buffers_bytes")
    assert not pattern.match("pg_stat_database_tup_fetched")
