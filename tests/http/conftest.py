"""Fixtures for the HTTP area: the framework instrumentors applied in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from covet_otel.instrumentation.http.frameworks import FlaskMetricsInstrumentor, StarletteMetricsInstrumentor


def _applied(instrumentor) -> Iterator:
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture
def starlette_instrumentor() -> Iterator[StarletteMetricsInstrumentor]:
    yield from _applied(StarletteMetricsInstrumentor())


@pytest.fixture
def flask_instrumentor() -> Iterator[FlaskMetricsInstrumentor]:
    yield from _applied(FlaskMetricsInstrumentor())
