"""docker-compose.yml, proven without a Docker engine: it validates against the Compose specification's
JSON schema (from the Go module compose-go, pinned in tools/versions.env), every file it mounts exists,
every address in the mounted configs names a compose service and a port that service has, images are
pinned to the versions the tests run natively, credentials come from .env, and the native stack
(harness.stack) runs the very files the compose services mount."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from harness import stack_compose, tools
from harness.stack import (
    COMPOSE_PORTS,
    compose_collector_configs,
    compose_prometheus_config,
    shipped_alertmanager_config,
    shipped_rule_files,
)
from harness.stack_compose import bind_mounts, compose, container_ports, mounts, published_ports, services

REPO = tools.REPO_ROOT
COMPOSE_GO = "github.com/compose-spec/compose-go/v2"
# one-shot jobs: compose waits for them to complete instead of for a health check
ONE_SHOT = {"migrate"}
# services whose state must survive `docker compose down` / a re-create
STATEFUL = {"postgres", "redis", "prometheus", "alertmanager", "grafana", "mailpit"}
# the ports users of the CovetPy pack open: Grafana, Prometheus, Alertmanager, the mail UI, the app
DEMO_AM = REPO / "demo" / "alertmanager"
PACK_PORTS = {"grafana": 3000, "prometheus": 9090, "alertmanager": 9093, "mailpit": 8025, "app": 8000}


@pytest.fixture(scope="session")
def compose_schema() -> dict[str, Any]:
    """schema/compose-spec.json of the pinned compose-go module (go mod download: the module cache
    keeps it after the first run)."""
    version = tools.version("COMPOSE_GO_VERSION")
    go = tools.find_binary("go", "/usr/local/go/bin/go")
    proc = subprocess.run(
        [str(go), "mod", "download", "-json", f"{COMPOSE_GO}@{version}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
        cwd="/",
    )
    if proc.returncode != 0:
        tools.missing(f"{COMPOSE_GO}@{version}", f"go mod download failed: {proc.stdout}{proc.stderr}")
    module_dir = Path(json.loads(proc.stdout)["Dir"])
    return json.loads((module_dir / "schema" / "compose-spec.json").read_text(encoding="utf-8"))


def schema_errors(schema: dict[str, Any], document: Any) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def test_the_compose_file_validates_against_the_compose_specification(compose_schema) -> None:
    assert schema_errors(compose_schema, compose()) == []


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("services", "app"), {"enviroment": {"A": "b"}}),  # a typo'd key
        (("services", "redis", "healthcheck"), {"interval": 5}),  # a duration must be a string
        (("services", "prometheus"), {"depends_on": {"otelcol": {"condition": "service_up"}}}),
    ],
)
def test_the_schema_rejects_what_compose_would_reject(compose_schema, path, bad) -> None:
    document = json.loads(json.dumps(compose()))
    node = document
    for key in path:
        node = node[key]
    node.update(bad)
    assert schema_errors(compose_schema, document)


def test_every_image_is_pinned_to_the_version_the_tests_run() -> None:
    images = {name: spec.get("image", "") for name, spec in services().items()}
    for name, image in images.items():
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        if "build" in services()[name]:
            # built from this checkout: pinned by its Dockerfile's base image
            assert tag == "local", f"{name} is built from this checkout: tag it :local, not {tag!r}"
            dockerfile = (REPO / services()[name]["build"]["dockerfile"]).read_text(encoding="utf-8")
            for base in re.findall(r"^FROM\s+(\S+)", dockerfile, re.M):
                assert re.search(r":[^:]*\d", base) and not base.endswith(":latest"), base
            continue
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image!r} is not pinned"
    prometheus = tools.version("PROMETHEUS_MODULE_VERSION")  # v0.3MM.P is Prometheus 3.MM.P
    major_minor = re.fullmatch(r"v0\.3(\d\d)\.(\d+)", prometheus)
    assert major_minor
    assert images["prometheus"] == f"prom/prometheus:v3.{int(major_minor[1])}.{major_minor[2]}"
    assert images["alertmanager"] == f"prom/alertmanager:{tools.version('ALERTMANAGER_VERSION')}"
    contrib = tools.version("OTELCOL_CONTRIB_VERSION").lstrip("v")
    assert images["otelcol"] == f"otel/opentelemetry-collector-contrib:{contrib}"
    assert images["postgres"].startswith(f"postgres:{tools.version('POSTGRESQL_MAJOR')}.")


def _binary_version(command: list[str], pattern: str) -> str:
    out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    found = re.search(pattern, out.stdout + out.stderr)
    assert found, (command, out.stdout, out.stderr)
    return found[1]


def test_the_debian_components_the_tests_run_match_the_images() -> None:
    """PostgreSQL, Redis and postgres_exporter run natively from Debian packages: the images carry the
    same versions (patch level of the server packages may move with Debian security updates)."""
    images = {name: spec.get("image", "") for name, spec in services().items()}
    exporter = _binary_version([str(tools.postgres_exporter()), "--version"], r"version (\d+\.\d+\.\d+)")
    assert images["postgres-exporter"].endswith(f":v{exporter}")
    redis = _binary_version([str(tools.redis_server()), "--version"], r"v=(\d+\.\d+)\.")
    assert images["redis"].startswith(f"redis:{redis}.")
    postgres = _binary_version([str(tools.postgres_bin_dir() / "postgres"), "--version"], r"\) (\d+)\.")
    assert images["postgres"].startswith(f"postgres:{postgres}.")


def test_every_long_running_service_has_a_health_check() -> None:
    for name, spec in services().items():
        if name in ONE_SHOT:
            done = "service_completed_successfully"
            waited = [
                other for other, o in services().items()
                if (o.get("depends_on") or {}).get(name, {}).get("condition") == done
            ]  # fmt: skip
            assert waited, f"{name} is listed as a one-shot job but nothing waits for it to complete"
            continue
        check = spec.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    # depends_on conditions only name services that can become healthy
    for name, spec in services().items():
        for dep, cond in (spec.get("depends_on") or {}).items():
            if cond.get("condition") == "service_healthy":
                assert "healthcheck" in services()[dep], f"{name} waits for {dep} to be healthy"


def test_state_lives_in_named_volumes_that_are_declared() -> None:
    declared = set(compose().get("volumes") or {})
    used = {m.source for name in services() for m in mounts(name) if m.named_volume}
    assert used == declared
    for name in STATEFUL:
        assert [m for m in mounts(name) if m.named_volume], f"{name} keeps its state in the container"


def test_every_mounted_file_exists() -> None:
    for name in services():
        for mount in bind_mounts(name):
            assert mount.host_path.exists(), f"{name} mounts {mount.source}, which does not exist"
            if mount.target.endswith((".yml", ".yaml", ".sh", ".json")):
                assert mount.host_path.is_file(), f"{name}: {mount.source} must be a file"
    build = {spec["build"]["dockerfile"] for spec in services().values() if "build" in spec}
    for dockerfile in build:
        assert (REPO / dockerfile).is_file()
        for source in re.findall(r"^COPY\s+(.+)\s+\S+$", (REPO / dockerfile).read_text(), re.M):
            for path in source.split():
                assert (REPO / path).exists(), f"{dockerfile} copies {path}, which does not exist"


def test_the_pack_ports_are_published() -> None:
    for name, port in PACK_PORTS.items():
        assert port in published_ports(name), f"{name} does not publish {port}"


def _compose_variables(text: str) -> set[str]:
    return set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))


def _env_example() -> dict[str, str]:
    found = {}
    for line in (REPO / ".env.example").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#?\s*([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if match:
            found[match[1]] = match[2].split("#")[0].strip()
    return found


def test_credentials_come_from_env_and_env_example_lists_every_variable() -> None:
    text = stack_compose.COMPOSE_FILE.read_text(encoding="utf-8")
    example = _env_example()
    assert _compose_variables(text) <= set(example), "variables missing from .env.example"
    secret_name = re.compile(r"PASSWORD|PASS$|SECRET|TOKEN|API_KEY")
    for name, spec in services().items():
        for key, value in (spec.get("environment") or {}).items():
            value = str(value)
            if secret_name.search(key):
                assert re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*(:?[?-][^}]*)?\}", value), (
                    f"{name}: {key} is not from .env"
                )
            # a URL with credentials takes the password from .env too
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
                assert password.startswith("${"), f"{name}: {key} has a password in the compose file"
    # .env.example ships no secret: every password is left for the user to set
    for key, value in example.items():
        if secret_name.search(key) and not key.endswith("_USER"):
            assert value == "", f".env.example sets {key}"


# `host:port` in a string: a bare host name (no dot: not an internet address) or localhost
ADDRESS = re.compile(r"(?<![\w.\-/])(?:[a-z]+://)?([a-z][a-z0-9\-]*):(\d{2,5})(?![\d\w])")


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _addresses_in(node: Any) -> set[tuple[str, int]]:
    return {(m[1], int(m[2])) for s in _strings(node) for m in ADDRESS.finditer(s)}


def _check_addresses(owner: str, where: str, addresses: set[tuple[str, int]]) -> list[str]:
    published = {port for name in services() for port in published_ports(name)}
    problems = []
    for host, port in sorted(addresses):
        if host == "localhost":
            # a service's address for itself (Prometheus scraping its own /metrics), or a link a user's
            # browser opens (the Grafana links in alert annotations): a port published to the host
            if port not in container_ports(owner) | published:
                problems.append(f"{where}: localhost:{port} is neither a port of {owner} nor published")
        elif host not in services():
            problems.append(f"{where}: {host}:{port} names no compose service")
        elif port not in container_ports(host):
            problems.append(f"{where}: {host}:{port}: {host} has no port {port} (expose/ports)")
    return problems


def _files_read(service: str) -> list[Path]:
    """The YAML files a service reads from its bind mounts. Prometheus reads its config and the rule
    files it names (alerts/ also holds promtool tests, which it never loads); the collector's
    configs take every address from the environment (checked below)."""
    if service == "prometheus":
        return [compose_prometheus_config(), *shipped_rule_files()]
    if service == "otelcol":
        return []
    files: list[Path] = []
    for mount in bind_mounts(service):
        if mount.source == "/":
            continue  # the host's filesystem for the host metrics, read-only
        path = mount.host_path
        files += [path] if path.is_file() else sorted(path.rglob("*"))
    return [f for f in files if f.suffix in (".yml", ".yaml")]


def test_every_address_in_the_mounted_configs_names_a_compose_service_and_port() -> None:
    problems = []
    for name in services():
        for path in _files_read(name):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            problems += _check_addresses(name, f"{name}: {path.relative_to(REPO)}", _addresses_in(data))
        environment = services()[name].get("environment")
        problems += _check_addresses(name, f"{name}: environment", _addresses_in(environment))
    assert problems == []


def test_the_demo_alertmanager_config_is_the_shipped_definition_with_local_sinks(tmp_path: Path) -> None:
    subprocess.run(
        ["covet-otel", "mixin", "build", "--config", str(DEMO_AM / "overrides.yml"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = (tmp_path / "alerts" / "alertmanager.yml").read_text(encoding="utf-8")
    assert (DEMO_AM / "alertmanager.yml").read_text(encoding="utf-8") == fresh, (
        "demo/alertmanager/alertmanager.yml is stale: regenerate it as demo/alertmanager/overrides.yml says"
    )
    shipped = yaml.safe_load((REPO / "alerts" / "alertmanager.yml").read_text(encoding="utf-8"))
    demo = yaml.safe_load(fresh)
    # the same routing, inhibition and muting: only where notifications go differs
    for key in ("route", "inhibit_rules", "time_intervals", "templates"):
        assert demo[key] == shipped[key], key
    receivers = json.dumps(demo["receivers"])
    assert "pagerduty.com" not in receivers and "api_url_file" not in receivers
    secrets = {m.target: m.host_path for m in bind_mounts("alertmanager")}["/etc/alertmanager/demo-secrets"]
    for key_file in re.findall(r'"routing_key_file": "([^"]+)"', receivers):
        assert (secrets / Path(key_file).name).is_file(), key_file


def test_every_collector_address_is_set_by_the_compose_environment() -> None:
    """The collector's configs default to loopback; in a container each such variable must be set, or
    the collector would listen on (or dial) its own loopback, unreachable from the other services."""
    environment = services()["otelcol"].get("environment") or {}
    for path in compose_collector_configs():
        for variable, default in re.findall(
            r"\$\{env:([A-Z0-9_]+):-([^}]*)\}", path.read_text(encoding="utf-8")
        ):
            if re.match(r"(https?://)?(127\.0\.0\.1|localhost)\b", default):
                assert variable in environment, (
                    f"{path.name}: {variable} (default {default}) not set in compose"
                )
    listen = [v for k, v in environment.items() if k.endswith("_ENDPOINT") and str(v).startswith("0.0.0.0:")]
    for value in listen:
        assert int(str(value).rpartition(":")[2]) in container_ports("otelcol"), value


def test_the_native_stack_table_covers_every_addressed_port() -> None:
    for name, ports in COMPOSE_PORTS.items():
        assert name in services(), f"harness.stack.COMPOSE_PORTS names {name}, which compose does not have"
        assert set(ports) == container_ports(name), name
    for name in services():
        if container_ports(name):
            assert name in COMPOSE_PORTS, f"{name} has ports the native stack does not map"


def test_the_native_stack_runs_the_files_the_compose_services_mount() -> None:
    """The native stack finds its config files through docker-compose.yml (harness.stack_compose): each
    is a file that the corresponding compose service mounts, with nothing left out."""
    collector_mounts = {m.host_path for m in bind_mounts("otelcol")}
    assert set(compose_collector_configs()) == collector_mounts - {Path("/")}
    assert compose_prometheus_config() in {m.host_path for m in bind_mounts("prometheus")}
    rules = shipped_rule_files()
    assert rules and all(p.parent == REPO / "alerts" and p.name.endswith(".rules.yml") for p in rules)
    assert shipped_alertmanager_config() == DEMO_AM / "alertmanager.yml"
    from harness.servers import PostgresExporter

    exporter = {m.target: m.host_path for m in bind_mounts("postgres-exporter")}
    assert exporter == {"/etc/postgres_exporter/queries.yaml": PostgresExporter.QUERIES.resolve()}
    assert (
        "--extend.query-path=/etc/postgres_exporter/queries.yaml"
        in services()["postgres-exporter"]["command"]
    )
    app_build = services()["app"]["build"]
    dockerfile = (REPO / app_build["dockerfile"]).read_text(encoding="utf-8")
    assert "COPY demo/shop.py" in dockerfile  # the app the native stack runs (harness.stack.APP_SCRIPT)
