"""Alembic: migration metrics with no change to migration scripts.

Loaded by `opentelemetry-instrument alembic upgrade head` through the `covet_alembic`
instrumentor entry point, or by one line in env.py:

    import covet_otel.events.alembic; covet_otel.events.alembic.enable()

`MigrationContext.run_migrations` (what env.py's `context.run_migrations()` ends in) is wrapped.
The wrapper reads what Alembic computes anyway, so it adds no query to the migration's
transaction: the database heads Alembic passes to the command's step function give the pending
count before the run, and an `on_version_apply` callback gives the heads after each step. A run
is counted (duration, outcome, in-progress) from its first step, so `alembic current` or an
`upgrade` with nothing to do only refreshes `covet_migration_pending`; a command that fails is
counted as a failed run even before its first step. Offline (`--sql`) runs are not measured.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap

from ._common import warn_once
from ._job import configure_for_job
from .migration import MigrationRun, set_pending_migrations

_logger = logging.getLogger("covet_otel")
MIGRATOR = "alembic"


class AlembicMetricsInstrumentor(BaseInstrumentor):
    """Records covet_migration_* for every Alembic command run in this process."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("alembic >= 1.7",)

    def _instrument(self, **kwargs: Any) -> None:
        wrapt.wrap_function_wrapper(
            "alembic.runtime.migration", "MigrationContext.run_migrations", _run_migrations
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        from alembic.runtime.migration import MigrationContext

        unwrap(MigrationContext, "run_migrations")


def enable() -> None:
    """The env.py one-liner: export like a job unless the process is configured already, and
    instrument Alembic. Never raises."""
    try:
        configure_for_job()
        AlembicMetricsInstrumentor().instrument()
    except Exception:
        warn_once("alembic:enable", "covet-otel: cannot instrument Alembic", exc_info=True)


class _Run:
    """One call of run_migrations: swaps in a step function and callback that observe it."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.script = getattr(ctx, "script", None)
        self.run: MigrationRun | None = None
        self.heads: tuple[str, ...] | None = None
        self._fn = ctx._migrations_fn
        if self._fn is None:
            raise ValueError("no step function: nothing to observe")
        self._callbacks = ctx.on_version_apply_callbacks
        ctx._migrations_fn = self._steps
        ctx.on_version_apply_callbacks = (*self._callbacks, self._applied)

    def _steps(self, heads: Any, ctx: Any) -> Iterator[Any]:
        self._report_pending(heads)
        for step in self._fn(heads, ctx):
            if self.run is None:
                self._start()
            yield step

    def _start(self) -> None:
        try:
            self.run = MigrationRun(MIGRATOR)
            self.run.__enter__()
        except Exception:
            warn_once("alembic:start", "covet-otel: cannot record an Alembic run", exc_info=True)

    def _applied(self, *, heads: Any, **_: Any) -> None:
        self.heads = tuple(heads)

    def _report_pending(self, heads: Any) -> None:
        try:
            if self.script is not None:
                set_pending_migrations(pending_count(self.script, tuple(heads)), MIGRATOR)
        except Exception as exc:  # a database ahead of its scripts, a broken revision graph
            warn_once("alembic:pending", "covet-otel: pending Alembic migrations unknown: %s", exc)

    def finish(self, error: BaseException | None) -> None:
        self.ctx._migrations_fn = self._fn
        self.ctx.on_version_apply_callbacks = self._callbacks
        if error is not None and self.run is None:
            self._start()  # a command that fails before its first step is a failed run too
        if self.run is not None:
            self.run.__exit__(type(error) if error is not None else None, error, None)
        # after a failure the database may have rolled back: the count from before the run stays
        if error is None and self.heads is not None:
            self._report_pending(self.heads)


def _run_migrations(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if getattr(instance, "as_sql", False):
        return wrapped(*args, **kwargs)
    try:
        run = _Run(instance)
    except Exception:
        warn_once("alembic:wrap", "covet-otel: cannot observe this Alembic run", exc_info=True)
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        _finish(run, error)
        raise
    _finish(run, None)
    return result


def _finish(run: _Run, error: BaseException | None) -> None:
    try:
        run.finish(error)
    except Exception:
        warn_once("alembic:finish", "covet-otel: cannot record the end of an Alembic run", exc_info=True)


def pending_count(script: Any, db_heads: tuple[str, ...]) -> int:
    """Revisions in the script directory that the database (at `db_heads`) has not applied.

    Counted as ancestry difference rather than an upgrade path, so several heads, branches and
    merges count right; a database head unknown to the scripts raises (the count is unknown).
    """

    def ancestry(revision_ids: tuple[str, ...]) -> set[str]:
        seen: set[str] = set()
        stack = list(revision_ids)
        while stack:
            revision = script.get_revision(stack.pop())
            if revision is None or revision.revision in seen:
                continue
            seen.add(revision.revision)
            down = revision.down_revision
            if down:
                stack.extend((down,) if isinstance(down, str) else down)
        return seen

    return len(ancestry(tuple(script.get_heads())) - ancestry(db_heads))
