"""Backups: duration, outcome, size and last success time of each backup run.

    with backup("nightly", output="/backups/shop.dump"):
        subprocess.run(["pg_dump", "-Fc", "-f", "/backups/shop.dump", "shop"], check=True)

    @backup("nightly")            # as a decorator: every call is one run
    def nightly() -> None: ...

A run fails when the block raises (the exception propagates unchanged), when `mark_failed()` was
called, or when `output` was given but the block did not produce it. On success the size of
`output` (a file, or the total of a directory such as `pg_dump -Fd` writes) is recorded, unless
the block set `run.size` itself.
"""

from __future__ import annotations

import os
import time

from .. import instruments
from ._common import JobRun, Outcome, check_name, non_negative_number, warn_once

# mtimes are compared with the start of the run; some filesystems keep whole seconds only
_MTIME_SLACK = 2.0


class BackupRun(JobRun):
    kind = "backup"

    def __init__(self, name: str, output: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.name = check_name("backup", name)
        self.output = os.fspath(output) if output is not None else None
        self.size: float | None = None  # set it in the block when the size is known otherwise
        self.outcome: Outcome | None = None
        self.recorded_size: float | None = None

    def _copy(self) -> BackupRun:
        return BackupRun(self.name, self.output)

    def __enter__(self) -> BackupRun:
        self.size = None
        self.outcome = None
        self.recorded_size = None
        return super().__enter__()

    def _finish(self, outcome: Outcome, seconds: float) -> Outcome:
        size = None
        if outcome == "success":
            size, problem = self._measure()
            if problem:
                warn_once(
                    f"backup:{self.name}:{problem}",
                    "covet-otel: backup %r counted as failed: %s",
                    self.name,
                    problem,
                )
                outcome = "failure"
        labels = (self.name, outcome)
        instruments.histogram("covet_backup_duration_seconds").series(labels).record(seconds)
        instruments.counter("covet_backup_runs_total").series(labels).add(1)
        if outcome == "success":
            # gauges are touched on success only: a failed first run must not export a 0 that
            # reads as "last success in 1970"
            instruments.gauge("covet_backup_last_success_timestamp").series((self.name,)).set(time.time())
            if size is not None:
                instruments.gauge("covet_backup_size_bytes").series((self.name,)).set(size)
        self.outcome = outcome
        self.recorded_size = size
        return outcome

    def _measure(self) -> tuple[float | None, str | None]:
        """(size to record, reason the run failed after all)."""
        if self.size is not None:
            size = self.size
            if not non_negative_number(size):
                warn_once(
                    f"backup:{self.name}:size",
                    "covet-otel: backup %r: size %r is not a number of bytes >= 0; size not recorded",
                    self.name,
                    size,
                )
                return None, None
            return float(size), None
        if self.output is None:
            return None, None
        try:
            size, newest = _size_and_mtime(self.output)
        except FileNotFoundError:
            return None, f"its output {self.output} does not exist"
        except OSError as exc:
            return None, f"its output {self.output} cannot be read ({exc.strerror})"
        if self.started_at is not None and newest < self.started_at - _MTIME_SLACK:
            return None, f"its output {self.output} was not written by this run"
        return float(size), None


def _size_and_mtime(path: str) -> tuple[int, float]:
    info = os.stat(path)
    if not os.path.isdir(path):
        return info.st_size, info.st_mtime
    total, newest = 0, info.st_mtime
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                file_info = os.stat(os.path.join(root, name), follow_symlinks=False)
            except OSError:
                continue
            total += file_info.st_size
            newest = max(newest, file_info.st_mtime)
    return total, newest


def backup(name: str, output: str | os.PathLike[str] | None = None) -> BackupRun:
    """A backup run named `name` (a fixed identifier: it is the `backup` label), as a context
    manager or decorator. `output`: the file or directory the backup produces; its size is
    recorded, and a run that does not produce it counts as failed."""
    return BackupRun(name, output)
