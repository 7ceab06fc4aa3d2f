"""Fixtures for the HTTP area: instrumentors applied in this process, apps in real servers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

APPS = Path(__file__).resolve().parent / "apps"


@pytest.fixture
def starlette_instrumentor() -> Iterator[object]:
    from covet_otel.instrumentation.http.frameworks import StarletteMetricsInstrumentor

    instrumentor = StarletteMetricsInstrumentor()
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture
def flask_instrumentor() -> Iterator[object]:
    from covet_otel.instrumentation.http.frameworks import FlaskMetricsInstrumentor

    instrumentor = FlaskMetricsInstrumentor()
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


def wait_until_serving(url: str, proc, timeout: float = 30.0) -> None:
    """Poll `url` until the server answers (any status)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            out, _ = proc.communicate()
            raise AssertionError(f"server exited {proc.returncode}: {out}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never answered")
        time.sleep(0.1)
