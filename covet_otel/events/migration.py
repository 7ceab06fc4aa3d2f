"""Migrations, for any migration tool: duration, outcome, in-progress, pending, last success.

    with track_migration("flyway"):
        subprocess.run(["flyway", "migrate"], check=True)
    set_pending_migrations(0, "flyway")

While a run is active, `covet_migration_in_progress` is 1 and `covet_migration_started_timestamp`
holds its start: `in_progress == 1 and time() - started > N` is a stuck migration. Alembic is
covered without code (covet_otel.events.alembic).
"""

from __future__ import annotations

import threading
import time

from .. import instruments
from ._common import JobRun, Outcome, check_name, non_negative_number, warn_once

_active: dict[str, int] = {}
_active_lock = threading.Lock()


class MigrationRun(JobRun):
    kind = "migration"

    def __init__(self, migrator: str = "generic") -> None:
        super().__init__()
        self.migrator = check_name("migrator", migrator)
        self.outcome: Outcome | None = None

    def _copy(self) -> MigrationRun:
        return MigrationRun(self.migrator)

    def __enter__(self) -> MigrationRun:
        self.outcome = None
        return super().__enter__()

    def _set_active(self, delta: int) -> None:
        with _active_lock:
            count = max(0, _active.get(self.migrator, 0) + delta)
            _active[self.migrator] = count
            instruments.gauge("covet_migration_in_progress").series((self.migrator,)).set(count)

    def _start(self) -> None:
        self._set_active(+1)
        started = self.started_at if self.started_at is not None else time.time()
        instruments.gauge("covet_migration_started_timestamp").series((self.migrator,)).set(started)

    def _finish(self, outcome: Outcome, seconds: float) -> Outcome:
        self._set_active(-1)
        labels = (self.migrator, outcome)
        instruments.histogram("covet_migration_duration_seconds").series(labels).record(seconds)
        instruments.counter("covet_migration_runs_total").series(labels).add(1)
        if outcome == "success":
            gauge = instruments.gauge("covet_migration_last_success_timestamp")
            gauge.series((self.migrator,)).set(time.time())
        self.outcome = outcome
        return outcome


def track_migration(migrator: str = "generic") -> MigrationRun:
    """A migration run of `migrator` (a fixed identifier: the `migrator` label), as a context
    manager or decorator."""
    return MigrationRun(migrator)


def set_pending_migrations(count: int, migrator: str = "generic") -> None:
    """Report how many migrations the database is behind its scripts. Never raises: a count that
    is not a whole number >= 0 is dropped and logged once; a bad migrator name is logged once."""
    try:
        check_name("migrator", migrator)
        if not non_negative_number(count) or count != int(count):
            warn_once(
                f"migration:{migrator}:pending",
                "covet-otel: pending migration count %r for %r dropped (expected a whole number >= 0)",
                count,
                migrator,
            )
            return
        instruments.gauge("covet_migration_pending").series((migrator,)).set(count)
    except ValueError as exc:
        warn_once(f"migration:pending:{migrator!r}"[:200], "covet-otel: %s", exc)
    except Exception:
        warn_once("migration:pending:error", "covet-otel: cannot record pending migrations", exc_info=True)
