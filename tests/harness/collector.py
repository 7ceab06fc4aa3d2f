"""The collector distribution as a harness server: ``otelcol-covet`` built by collector/build.sh.

The binary missing skips the test, except under CI=true where it fails (``tools.missing``).
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import tools
from .servers import Server, _http_ok, free_port

COLLECTOR_DIR = tools.REPO_ROOT / "collector"
CONFIG = COLLECTOR_DIR / "config.yaml"
POSTGRESQL = COLLECTOR_DIR / "postgresql.yaml"
VARIANTS = COLLECTOR_DIR / "variants"


@functools.lru_cache(maxsize=1)
def _binary_path() -> Path:
    out = subprocess.run(
        ["bash", str(COLLECTOR_DIR / "build.sh"), "--print-binary"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return Path(out)


def collector_binary() -> Path:
    """The built otelcol-covet (``collector/build.sh --print-binary``)."""
    path = _binary_path()
    if not (path.is_file() and path.stat().st_mode & 0o111):
        tools.missing("otelcol-covet", f"expected {path}; build it with collector/build.sh")
    return path


def components(binary: Path) -> dict[str, set[str]]:
    """Component names by kind, from `otelcol-covet components`."""
    import yaml

    out = subprocess.run([str(binary), "components"], check=True, capture_output=True, text=True).stdout
    data = yaml.safe_load(out)
    return {
        kind: {entry["name"] for entry in data.get(kind) or []}
        for kind in ("receivers", "processors", "exporters", "extensions", "connectors")
    }


class Collector(Server):
    """otelcol-covet running collector/config.yaml (plus overlays) with every port on loopback.

    ``port`` is the Prometheus exporter's; ``otlp_http``, ``otlp_grpc``, ``health`` and ``telemetry``
    are the other ports. ``env`` adds or overrides environment variables of the config (the shipped
    configs take every address from the environment, so they run unchanged)."""

    name = "otelcol"

    def __init__(
        self,
        binary: Path | None = None,
        configs: Sequence[Path] = (CONFIG,),
        *,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.binary = binary or collector_binary()
        self.configs = list(configs)
        self.otlp_http = free_port()
        self.otlp_grpc = free_port()
        self.health = free_port()
        self.telemetry = free_port()
        super().__init__(**kwargs)
        self.env = {
            "COVET_COLLECTOR_PROMETHEUS_ENDPOINT": f"127.0.0.1:{self.port}",
            "COVET_COLLECTOR_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.otlp_http}",
            "COVET_COLLECTOR_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.otlp_grpc}",
            "COVET_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{self.health}",
            "COVET_COLLECTOR_TELEMETRY_HOST": "127.0.0.1",
            "COVET_COLLECTOR_TELEMETRY_PORT": str(self.telemetry),
            "COVET_COLLECTOR_SCRAPE_INTERVAL": "1s",
            **dict(env or {}),
        }

    def command(self) -> list[str]:
        args = [str(self.binary)]
        for config in self.configs:
            args += ["--config", str(config)]
        return args

    def ready(self) -> bool:
        return _http_ok(f"http://127.0.0.1:{self.health}/")

    @property
    def otlp_endpoint(self) -> str:
        """For OTEL_EXPORTER_OTLP_ENDPOINT (the SDK appends /v1/metrics)."""
        return f"http://127.0.0.1:{self.otlp_http}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    @property
    def telemetry_address(self) -> str:
        return f"127.0.0.1:{self.telemetry}"

    @property
    def telemetry_url(self) -> str:
        return f"http://127.0.0.1:{self.telemetry}/metrics"


def collector_scrape_config(collector: Collector, job: str = "otelcol") -> dict[str, Any]:
    """A Prometheus scrape config for the collector's exporter: honor_labels keeps the job/instance that
    the exporter derives from service.name / service.instance.id."""
    return {
        "job_name": job,
        "honor_labels": True,
        "scrape_interval": "1s",
        "static_configs": [{"targets": [f"127.0.0.1:{collector.port}"]}],
    }
