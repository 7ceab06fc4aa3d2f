"""Alembic migrations against the harness PostgreSQL, measured with no change to the scripts."""

from __future__ import annotations

import threading
import time

import pytest
from alembic import command

from covet_otel.events import set_pending_migrations, track_migration

pytestmark = pytest.mark.usefixtures("alembic_instrumented")


def alembic_state(scraped) -> dict[str, float]:
    """Every covet_migration_* sample of migrator alembic, by sample name (+ outcome)."""
    state = {}
    for name, labels in scraped.samples:
        label = dict(labels)
        if name.startswith("covet_migration_") and label.get("migrator") == "alembic" and "le" not in label:
            key = name + (f":{label['outcome']}" if "outcome" in label else "")
            state[key] = scraped.samples[(name, labels)]
    return state


def test_upgrade_failure_and_downgrade_are_measured(metrics, alembic_project) -> None:
    config = alembic_project.config()
    command.current(config)  # nothing to run: refreshes pending only
    state = alembic_state(metrics.scrape())
    assert state["covet_migration_pending"] == 4
    assert state.get("covet_migration_runs_total:success", 0) == 0

    before = time.time()
    command.upgrade(config, "r3")
    after = time.time()
    state = alembic_state(metrics.scrape())
    assert state["covet_migration_pending"] == 1
    assert state["covet_migration_runs_total:success"] == 1
    assert state["covet_migration_duration_seconds_count:success"] == 1
    assert state["covet_migration_in_progress"] == 0
    assert (
        before
        <= state["covet_migration_started_timestamp"]
        <= state["covet_migration_last_success_timestamp"]
    )
    assert state["covet_migration_last_success_timestamp"] <= after
    last_success = state["covet_migration_last_success_timestamp"]

    with pytest.raises(Exception, match="already exists"):  # r4 adds a column that exists
        command.upgrade(config, "head")
    state = alembic_state(metrics.scrape())
    assert state["covet_migration_runs_total:failure"] == 1
    assert state["covet_migration_duration_seconds_count:failure"] == 1
    assert state["covet_migration_pending"] == 1  # rolled back: still one behind
    assert state["covet_migration_in_progress"] == 0
    assert state["covet_migration_last_success_timestamp"] == last_success

    command.downgrade(config, "r1")
    state = alembic_state(metrics.scrape())
    assert state["covet_migration_runs_total:success"] == 2
    assert state["covet_migration_pending"] == 3
    assert alembic_project_revision(alembic_project) == "r1"


def alembic_project_revision(project) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(project.url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()


def test_an_upgrade_with_nothing_to_do_is_not_a_run(metrics, alembic_project) -> None:
    config = alembic_project.config()
    command.upgrade(config, "r2")
    command.upgrade(config, "r2")
    state = alembic_state(metrics.scrape())
    assert state["covet_migration_runs_total:success"] == 1
    assert state["covet_migration_pending"] == 2


def test_stamp_is_a_run_and_moves_pending(metrics, alembic_project) -> None:
    command.stamp(alembic_project.config(), "r2")
    state = alembic_state(metrics.scrape())
    assert state["covet_migration_runs_total:success"] == 1
    assert state["covet_migration_pending"] == 2


def test_a_bad_revision_argument_is_a_failed_run(metrics, alembic_project) -> None:
    with pytest.raises(Exception, match="nonexistent"):
        command.upgrade(alembic_project.config(), "nonexistent")
    assert alembic_state(metrics.scrape())["covet_migration_runs_total:failure"] == 1


def test_in_progress_is_visible_while_a_slow_revision_runs(metrics, alembic_project, monkeypatch) -> None:
    config = alembic_project.config()
    command.upgrade(config, "r2")
    monkeypatch.setenv("COVET_TEST_SLOW_SECONDS", "3")
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            command.upgrade(config, "r3")
        except BaseException as exc:
            errors.append(exc)

    started = time.time()
    worker = threading.Thread(target=migrate)
    worker.start()
    seen: dict[str, float] | None = None
    try:
        while worker.is_alive() and seen is None:
            state = alembic_state(metrics.scrape())
            if state.get("covet_migration_in_progress") == 1 and worker.is_alive():
                seen = state  # seen while the migration runs, not after
            time.sleep(0.05)
    finally:
        worker.join(30)
    assert seen is not None, "in-progress was never 1 while the slow revision ran"
    assert started <= seen["covet_migration_started_timestamp"] <= time.time()
    assert seen.get("covet_migration_runs_total:success", 0) == 1  # only r2's run so far
    assert not errors
    state = alembic_state(metrics.scrape())
    assert state["covet_migration_in_progress"] == 0
    assert state["covet_migration_runs_total:success"] == 2
    assert state["covet_migration_duration_seconds_sum:success"] >= 3


def test_offline_sql_generation_is_not_measured(metrics, alembic_project, capsys) -> None:
    command.upgrade(alembic_project.config(), "r2", sql=True)
    assert "CREATE TABLE items" in capsys.readouterr().out
    state = alembic_state(metrics.scrape())
    assert state.get("covet_migration_runs_total:success", 0) == 0


def test_uninstrument_stops_measuring(metrics, alembic_project) -> None:
    from covet_otel.events.alembic import AlembicMetricsInstrumentor

    AlembicMetricsInstrumentor().uninstrument()
    try:
        command.upgrade(alembic_project.config(), "r1")
        assert alembic_state(metrics.scrape()).get("covet_migration_runs_total:success", 0) == 0
    finally:
        AlembicMetricsInstrumentor().instrument()


def test_generic_tracker_and_pending(metrics) -> None:
    with track_migration("flyway"):
        pass
    with pytest.raises(KeyError), track_migration("flyway"):
        raise KeyError("boom")
    set_pending_migrations(3, "flyway")
    for bad in (-1, 1.5, float("nan"), "2", None):
        set_pending_migrations(bad, "flyway")  # type: ignore[arg-type]
    set_pending_migrations(1, "a migrator/with a path")  # logged, never raised

    scraped = metrics.scrape()
    assert scraped.value("covet_migration_runs_total", migrator="flyway", outcome="success") == 1
    assert scraped.value("covet_migration_runs_total", migrator="flyway", outcome="failure") == 1
    assert scraped.value("covet_migration_pending", migrator="flyway") == 3
    assert scraped.value("covet_migration_in_progress", migrator="flyway") == 0
    assert not [s for s in scraped.series("covet_migration_pending") if "path" in s["migrator"]]
