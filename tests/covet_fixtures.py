"""Pytest plugin (loaded with -p, see pyproject.toml): read covet_* metrics where a user reads them.

- `metrics`: this test process configured by covet_otel.configure() with its embedded /metrics
  endpoint on a free port; every series zeroed before the test. `metrics.scrape()` returns the
  parsed exposition text.
- `instrumented_app`: starts a script under `opentelemetry-instrument` in a real subprocess and
  scrapes that process's /metrics.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Samples:
    """Parsed Prometheus text: samples keyed by (sample name, sorted label items)."""

    text: str

    def __post_init__(self) -> None:
        self.samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(self.text):
            self.types[family.name] = family.type
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                self.samples[key] = sample.value

    def value(self, name: str, **labels: str) -> float:
        """The one sample with exactly these labels (KeyError lists what exists)."""
        key = (name, tuple(sorted(labels.items())))
        if key not in self.samples:
            have = [dict(lbl) for (n, lbl) in self.samples if n == name]
            raise KeyError(f"no sample {name}{labels}; have {have}")
        return self.samples[key]

    def get(self, name: str, default: float = 0.0, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def series(self, name: str) -> list[dict[str, str]]:
        """Label sets of every sample with this sample name."""
        return [dict(lbl) for (n, lbl) in self.samples if n == name]

    def names(self) -> set[str]:
        return {n for (n, _) in self.samples}

    def total(self, name: str, **labels: str) -> float:
        """Sum over every sample of `name` whose labels include these."""
        want = set(labels.items())
        return sum(v for (n, lbl), v in self.samples.items() if n == name and want <= set(lbl))


def record_every_sdk_metric(free_label_value: str = "x") -> None:
    """One sample in every app-process (sdk) catalogue metric: the first allowed value of each
    label, ``free_label_value`` for labels without a fixed set."""
    from covet_otel import instruments
    from covet_otel.catalogue import CATALOGUE

    for d in CATALOGUE:
        if d.source != "sdk":
            continue
        labels = tuple((label.values[0] if label.values else free_label_value) for label in d.labels)
        if d.kind == "histogram":
            instruments.histogram(d.name).record(0.02, labels)
        elif d.kind == "counter":
            instruments.counter(d.name).add(1, labels)
        elif d.kind == "updowncounter":
            instruments.updowncounter(d.name).add(1, labels)
        else:
            instruments.gauge(d.name).set(1, labels)


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return Samples(response.text)


class EmbeddedMetrics:
    def __init__(self, url: str) -> None:
        self.url = url

    def scrape(self) -> Samples:
        return scrape(self.url)


@pytest.fixture(scope="session")
def _configured_process() -> Iterator[EmbeddedMetrics]:
    import covet_otel

    port = free_tcp_port()
    env = dict(os.environ)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop("OTEL_METRICS_EXPORTER", None)
    env["OTEL_EXPORTER_PROMETHEUS_PORT"] = str(port)
    pipeline = covet_otel.configure(environ=env)
    assert pipeline is not None and pipeline.prometheus_address is not None
    yield EmbeddedMetrics(f"http://127.0.0.1:{port}/metrics")
    covet_otel.shutdown()


@pytest.fixture
def metrics(_configured_process: EmbeddedMetrics) -> EmbeddedMetrics:
    from covet_otel import instruments

    instruments.reset_all()
    return _configured_process


class InstrumentedApp:
    """A script run under `opentelemetry-instrument` in its own process."""

    def __init__(self, proc: subprocess.Popen, metrics_url: str | None) -> None:
        self.proc = proc
        self.metrics_url = metrics_url

    def scrape(self) -> Samples:
        assert self.metrics_url, "this app exports OTLP, it has no /metrics endpoint"
        return scrape(self.metrics_url)

    def output(self) -> str:
        self.stop()
        out, _ = self.proc.communicate()
        return out or ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def launch(
    args: list[str], env: Mapping[str, str] | None = None, prometheus: bool = True, wait: float = 30.0
) -> InstrumentedApp:
    """Start `opentelemetry-instrument <args>`; with `prometheus`, wait until /metrics answers."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COVET_"))}
    full_env["PYTHONUNBUFFERED"] = "1"
    url = None
    if prometheus:
        port = free_tcp_port()
        full_env["OTEL_EXPORTER_PROMETHEUS_PORT"] = str(port)
        url = f"http://127.0.0.1:{port}/metrics"
    full_env.update(env or {})
    launcher = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    proc = subprocess.Popen(
        [launcher, *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    app = InstrumentedApp(proc, url)
    if url:
        deadline = time.monotonic() + wait
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"process exited {proc.returncode}: {app.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                app.stop()
                raise AssertionError(f"/metrics never answered: {app.output()}")
            time.sleep(0.1)
    return app


@pytest.fixture
def instrumented_app() -> Iterator:
    """Factory: instrumented_app([python, script.py], env=...) -> InstrumentedApp, stopped after."""
    started: list[InstrumentedApp] = []

    def start(
        args: list[str], env: Mapping[str, str] | None = None, prometheus: bool = True
    ) -> InstrumentedApp:
        app = launch(args, env, prometheus)
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()
