"""`covet-otel job`: run a job command and record its metrics, passing its exit code through.

    covet-otel job backup --name nightly --output /backups/shop.dump -- pg_dump -Fc -f /backups/shop.dump shop
    covet-otel job migrate --migrator django -- python manage.py migrate

The job pushes its metrics over OTLP (set OTEL_EXPORTER_OTLP_ENDPOINT) and flushes them before it
exits, so a run that ends a millisecond after the command still arrives. The command runs even
when telemetry cannot be set up: a backup matters more than its metrics.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from .events._common import JobRun, check_name
from .events._job import configure_for_job, flush

# Signals a supervisor (cron, systemd, Kubernetes) sends to stop a job: passed on to the command
# so that it stops cleanly and the run is recorded as the failure it is.
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `job` to a `covet-otel` subparsers object; it dispatches through `args.func(args)`."""
    job = subparsers.add_parser(
        "job",
        help="run a backup or migration command and record its metrics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = job.add_subparsers(dest="job_kind", required=True)

    backup = kinds.add_parser(
        "backup",
        help="run a backup command",
        description="Record duration, outcome, size and last "
        "success time of a backup command (covet_backup_*); exit with the command's exit code.",
    )
    backup.add_argument(
        "--name",
        required=True,
        type=_name("backup"),
        help="the backup's fixed name (the `backup` label), e.g. nightly",
    )
    backup.add_argument(
        "--output",
        help="file or directory the command writes: its size is recorded, "
        "and a run that does not write it counts as failed",
    )
    backup.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")

    migrate = kinds.add_parser(
        "migrate",
        help="run a migration command",
        description="Record duration, outcome, "
        "in-progress and last success time of a migration command (covet_migration_*). For "
        "Alembic prefer `opentelemetry-instrument alembic upgrade head`: it also reports pending.",
    )
    migrate.add_argument(
        "--migrator",
        default="generic",
        type=_name("migrator"),
        help="the migration tool's fixed name (the `migrator` label); default generic",
    )
    migrate.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")

    job.set_defaults(func=run)
    return job


def _name(kind: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        try:
            return check_name(kind, value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def run(args: argparse.Namespace) -> int:
    """Run the job's command under its tracker; the command's exit code (128+N if killed by N)."""
    command = list(args.cmd)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print(f"covet-otel job {args.job_kind}: no command given (put it after --)", file=sys.stderr)
        return 2
    child_env = dict(os.environ)  # before configure_for_job adds its defaults
    configure_for_job(service_name=f"covet-{args.job_kind}")
    tracker = _tracker(args)
    with tracker:
        code = _run_command(command, child_env)
        if code != 0:
            tracker.mark_failed()
    flush()
    return code


def _tracker(args: argparse.Namespace) -> JobRun:
    if args.job_kind == "backup":
        from .events.backup import BackupRun

        return BackupRun(args.name, args.output)
    from .events.migration import MigrationRun

    return MigrationRun(args.migrator)


def _run_command(command: list[str], env: dict[str, str]) -> int:
    started: list[subprocess.Popen] = []
    early: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if not started:
            early.append(signum)  # arrived while the command was being started
            return
        try:
            started[0].send_signal(signum)
        except ProcessLookupError:
            pass

    previous: dict[int, Any] = {}
    try:
        # installed before the command starts: a signal in between must not kill the wrapper
        # and leave the command running unsupervised
        for sig in _FORWARDED:
            previous[sig] = signal.signal(sig, forward)
    except ValueError:  # not the main thread (run() called from embedding code): no forwarding
        pass
    try:
        try:
            proc = subprocess.Popen(command, env=env)
        except FileNotFoundError:
            print(f"covet-otel job: command not found: {command[0]}", file=sys.stderr)
            return 127  # the shell's codes, so cron and CI read them as they always have
        except OSError as exc:
            print(f"covet-otel job: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
            return 126
        started.append(proc)
        for signum in early:
            proc.send_signal(signum)
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def main(argv: list[str] | None = None) -> int:
    """`python -m covet_otel.cli_job backup --name N -- cmd ...` (same as `covet-otel job ...`)."""
    parser = argparse.ArgumentParser(prog="covet-otel")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["job", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
