"""Fixtures for the collector tests: the built otelcol-covet binary and a collector server.

The binary is built by collector/build.sh (scripts/install-tools.sh runs it). When it is missing the
tests skip, except under CI=true where they fail (harness.tools.missing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

# the Collector server class lives in the harness (the whole-stack harness uses it too); re-exported here
from harness.collector import (  # noqa: F401 - re-exported for the tests of this directory
    COLLECTOR_DIR,
    CONFIG,
    POSTGRESQL,
    VARIANTS,
    Collector,
    collector_binary,
    collector_scrape_config,
    components,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def otelcol() -> Path:
    return collector_binary()


@pytest.fixture
def collector_factory(otelcol: Path) -> Iterator[Callable[..., Collector]]:
    """``collector_factory(configs=..., env=...)`` → a started collector, cleaned up after the test."""
    created: list[Collector] = []

    def make(configs: Sequence[Path] = (CONFIG,), **kwargs: Any) -> Collector:
        server = Collector(otelcol, configs, **kwargs)
        created.append(server)
        server.start()
        return server

    yield make
    for server in reversed(created):
        server.cleanup()


@pytest.fixture
def postgres_exporter(postgres) -> Iterator[Any]:
    """postgres_exporter for the session PostgreSQL, as the shipped collector/postgresql.yaml expects it."""
    from harness import PostgresExporter

    exporter = PostgresExporter(postgres)
    try:
        yield exporter.start()
    finally:
        exporter.cleanup()
