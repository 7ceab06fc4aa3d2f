"""Shared fixtures: real servers from the harness (tests/harness, docs/testing.md).

Keep this file to fixtures only; area-specific fixtures go in tests/<area>/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from harness import Alertmanager, PostgreSQL, Prometheus, Redis
from harness import free_port as _free_port
from harness.servers import Server


def _running(server: Server) -> Iterator[Server]:
    """Start a server for a fixture and clean it up (stopped, files removed) after."""
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgreSQL]:
    """One PostgreSQL for the session. Do not stop or pause it: use ``fresh_postgres`` for that."""
    yield from _running(PostgreSQL())


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    """One Redis for the session. Do not stop or pause it: use ``fresh_redis`` for that."""
    yield from _running(Redis())


@pytest.fixture
def fresh_postgres() -> Iterator[PostgreSQL]:
    """A PostgreSQL of this test's own, free to be stopped, paused or restarted."""
    yield from _running(PostgreSQL())


@pytest.fixture
def fresh_redis() -> Iterator[Redis]:
    """A Redis of this test's own, free to be stopped, paused or restarted."""
    yield from _running(Redis())


@pytest.fixture
def prometheus_factory() -> Iterator[Callable[..., Prometheus]]:
    """``prometheus_factory(scrape_targets=..., rule_files=..., ...)`` → a started Prometheus.

    Keyword arguments are those of ``harness.Prometheus``; every server is cleaned up after the test."""
    created: list[Prometheus] = []

    def make(**kwargs: Any) -> Prometheus:
        server = Prometheus(**kwargs)
        created.append(server)
        return server.start()

    yield make
    for server in reversed(created):
        server.cleanup()


@pytest.fixture
def alertmanager_factory() -> Iterator[Callable[..., Alertmanager]]:
    """``alertmanager_factory(config_file=None, config=None, ...)`` → a started Alertmanager."""
    created: list[Alertmanager] = []

    def make(config_file: Any = None, **kwargs: Any) -> Alertmanager:
        server = Alertmanager(config_file, **kwargs)
        created.append(server)
        return server.start()

    yield make
    for server in reversed(created):
        server.cleanup()


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    """The whole native stack (``harness.stack.Stack``) with the shipped rules and Alertmanager config,
    healthy and shared by the session: read from it, never inject faults into it (create a ``Stack``
    of the test's own for that)."""
    from harness.stack import session_stack

    yield from session_stack()


@pytest.fixture
def free_port() -> Callable[..., int]:
    """The ``harness.free_port`` function: ``free_port()`` → an unused loopback TCP port."""
    return _free_port
