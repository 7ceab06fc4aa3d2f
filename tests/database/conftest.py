"""Fixtures for the database group: the covet asyncpg instrumentor on, over a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import pytest

from covet_otel import settings as settings_module

_counter = itertools.count()


@pytest.fixture
def covet_asyncpg(metrics) -> Iterator[object]:
    """The covet asyncpg instrumentor switched on for this test, with test-sized thresholds.

    COVET_DB_SLOW_QUERY_SECONDS=0.2 and COVET_DB_LEAK_SECONDS=0.5, so tests do not wait minutes.
    """
    from covet_otel.instrumentation.asyncpg import AsyncpgMetricsInstrumentor

    before = settings_module.current()
    settings_module.set_current(dataclasses.replace(before, db_slow_query_seconds=0.2, db_leak_seconds=0.5))
    instrumentor = AsyncpgMetricsInstrumentor()
    instrumentor.instrument()
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()
        settings_module.set_current(before)


@pytest.fixture
def database(postgres) -> Iterator[tuple[str, str]]:
    """A database of this test's own: (name, dsn). Its name is the `pool` label of its queries."""
    name = f"covet_db_{next(_counter)}"
    dsn = postgres.create_database(name)
    yield name, dsn
    postgres.drop_database(name)
