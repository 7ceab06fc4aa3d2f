"""Fixtures of the application-events tests: a fresh database with Alembic pointed at it."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MIGRATIONS = Path(__file__).parent / "migrations"
BIN = Path(sys.executable).parent
_databases = itertools.count()


@dataclass
class AlembicProject:
    dsn: str  # libpq form, for psql / pg_dump
    url: str  # SQLAlchemy form
    ini: Path

    def config(self):  # an alembic Config for in-process commands
        from alembic.config import Config

        return Config(str(self.ini))


@pytest.fixture
def alembic_project(postgres, tmp_path) -> Iterator[AlembicProject]:
    """A new, empty database and an alembic.ini for the test migrations r1 -> r2 -> r3 (slow when
    COVET_TEST_SLOW_SECONDS is set) -> r4 (always fails)."""
    name = f"events_{next(_databases)}"
    postgres.drop_database(name)
    dsn = postgres.create_database(name)
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    ini = tmp_path / "alembic.ini"
    ini.write_text(
        "[alembic]\n"
        f"script_location = {MIGRATIONS}\n"
        f"sqlalchemy.url = {url}\n"
        "[loggers]\nkeys = root\n[handlers]\nkeys = console\n[formatters]\nkeys = generic\n"
        "[logger_root]\nlevel = WARNING\nhandlers = console\n"
        "[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nlevel = NOTSET\n"
        "formatter = generic\n[formatter_generic]\nformat = %(levelname)s %(name)s %(message)s\n"
    )
    yield AlembicProject(dsn, url, ini)
    postgres.drop_database(name)


@pytest.fixture
def alembic_instrumented() -> Iterator[None]:
    from covet_otel.events.alembic import AlembicMetricsInstrumentor

    instrumentor = AlembicMetricsInstrumentor()
    instrumentor.instrument()
    yield
    instrumentor.uninstrument()
