"""Pre-fork workers' series on the parent's embedded /metrics endpoint.

Under gunicorn or `uvicorn --workers`, the process that bound :9464 is the master, which handles
no requests, and the workers cannot bind the same port. So the process serving the endpoint (the
*owner*) names a share directory in its environment; every worker (forked, or spawned with that
environment) writes a snapshot of its series there once a second and at exit, and the owner adds
the workers' values into what it serves, combining each metric as its catalogue entry says
(`MetricDef.worker_merge`). Counters and histograms of workers that have exited are kept, so
totals never go backwards when gunicorn replaces a worker. With OTLP none of this runs: each
worker pushes its own data under its own `service.instance.id`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from .. import instruments
from ..catalogue import MetricDef

_logger = logging.getLogger("covet_otel")
ENV = "_COVET_OTEL_WORKER_SHARE"  # "<owner pid>:<directory>", inherited by forked and spawned workers
WRITE_INTERVAL = 1.0
_READ_TTL = 0.2  # one scrape reads the snapshots once, not once per metric

PREFIX = "covet-otel-workers-"
_owned: Path | None = None
_writing_to: Path | None = None
_created = False  # this worker has made sure the share directory exists
_retired: dict[str, dict[tuple[str, ...], list]] = {}
_cache: tuple[float, list[dict[str, Any]]] = (0.0, [])
_lock = threading.Lock()


def start_sharing() -> Path:
    """Owner side: create the share directory and hand it to future workers."""
    global _owned
    if _owned is None:
        sweep_stale()
        # named now, created by the first worker that writes: a process that never forks leaves
        # nothing behind, even when it is killed without running atexit
        _owned = Path(tempfile.gettempdir()) / f"{PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
        os.environ[ENV] = f"{os.getpid()}:{_owned}"
        owner = os.getpid()
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(_owned or "", ignore_errors=True))
    return _owned


def sweep_stale() -> None:
    """Remove the share directories of owners that died without their atexit (SIGKILL, OOM)."""
    for path in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        owner = path.name[len(PREFIX) :].partition("-")[0]
        if owner.isdigit() and int(owner) != os.getpid() and not psutil.pid_exists(int(owner)):
            shutil.rmtree(path, ignore_errors=True)


def share_for_forked_child() -> Path | None:
    """In a child just forked from an owner (or from one of its workers): where to write."""
    return _owned or _writing_to


def share_for_spawned_worker() -> Path | None:
    """In a new interpreter: the owner's share directory when this is a multiprocessing worker
    the owner spawned itself (`uvicorn --workers`). Any other program the application starts
    inherits the variable too, and must keep its own endpoint, hence the parent and argv check."""
    owner, _, directory = os.environ.get(ENV, "").partition(":")
    if not directory or not owner.isdigit() or int(owner) != os.getppid():
        return None
    argv = " ".join(getattr(sys, "orig_argv", sys.argv))
    if "spawn_main" not in argv:  # multiprocessing's worker entry, not its resource tracker
        return None
    return Path(directory)


def start_writer(directory: Path) -> None:
    """Worker side: write this process's snapshot every WRITE_INTERVAL and at exit."""
    global _owned, _writing_to
    _owned = None  # a forked worker serves nothing, even if its parent did
    _writing_to = directory

    def loop() -> None:
        while True:
            time.sleep(WRITE_INTERVAL)
            write_snapshot(directory)

    threading.Thread(target=loop, name="covet-otel-worker-share", daemon=True).start()
    atexit.register(write_snapshot, directory)


def write_snapshot(directory: Path) -> None:
    from .producer import local_states

    global _created
    try:
        metrics = {
            inst.definition.name: [[list(labels), state] for labels, state in local_states(inst).items()]
            for inst in instruments.registered()
        }
        if not _created:
            # Only a worker's first write may create the directory, and only while its owner
            # lives: a last write at exit after the owner removed it must not bring it back.
            owner = os.environ.get(ENV, "").partition(":")[0]
            if owner.isdigit() and not psutil.pid_exists(int(owner)):
                return
            directory.mkdir(mode=0o700, exist_ok=True)
            _created = True
        elif not directory.is_dir():
            return
        target = directory / f"{os.getpid()}.json"
        tmp = directory / f".{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"pid": os.getpid(), "metrics": metrics}))
        os.replace(tmp, target)
    except Exception:  # the share directory vanished, or the disk is full: never the app's problem
        _logger.debug("covet-otel: writing the worker snapshot failed", exc_info=True)


def names() -> set[str]:
    """Owner side: every metric some worker has, so the owner serves it even if it never
    recorded it itself (the master of a pre-fork server handles no requests)."""
    if _owned is None:
        return set()
    return {name for s in _snapshots() for name in s["metrics"]} | set(_retired)


def merge_into(definition: MetricDef, states: dict[tuple[str, ...], list]) -> None:
    """Owner side: add the workers' values of one metric into this process's `states`."""
    if _owned is None or definition.worker_merge == "parent":
        return
    sources = [*(s["metrics"].get(definition.name, ()) for s in _snapshots())]
    retired = _retired.get(definition.name, {})
    sources.append([[list(labels), state] for labels, state in retired.items()])
    for entries in sources:
        for labels, state in entries:
            key = tuple(labels)
            current = states.get(key)
            states[key] = list(state) if current is None else _combine(definition, current, state)


def _combine(definition: MetricDef, a: list, b: list) -> list:
    if definition.kind == "histogram":
        counts = [x + y for x, y in zip(a[0], b[0])]
        return [counts, a[1] + b[1], a[2] + b[2], min(a[3], b[3]), max(a[4], b[4]), min(a[5], b[5])]
    merge = definition.worker_merge
    value = {"min": min, "max": max}.get(merge, lambda x, y: x + y)(a[0], b[0])
    return [value, min(a[1], b[1])]


def _snapshots() -> list[dict[str, Any]]:
    global _cache
    with _lock:
        now = time.monotonic()
        if now - _cache[0] < _READ_TTL:
            return _cache[1]
        live: list[dict[str, Any]] = []
        for path in sorted(_owned.glob("*.json")) if _owned else ():
            try:
                snapshot = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced right now; the next scrape reads it
            if psutil.pid_exists(snapshot["pid"]):
                live.append(snapshot)
            else:
                _retire(snapshot)
                with contextlib.suppress(OSError):
                    path.unlink()
        _cache = (now, live)
        return live


def _retire(snapshot: dict[str, Any]) -> None:
    """Keep an exited worker's counters and histograms (its gauges end with it)."""
    from ..catalogue import BY_NAME

    for name, entries in snapshot["metrics"].items():
        definition = BY_NAME.get(name)
        if definition is None or definition.kind not in ("counter", "histogram"):
            continue
        kept = _retired.setdefault(name, {})
        for labels, state in entries:
            key = tuple(labels)
            kept[key] = list(state) if key not in kept else _combine(definition, kept[key], state)


def reset_owner_state() -> None:
    """A forked child starts with nothing retired and nothing cached."""
    global _cache, _created
    _retired.clear()
    _cache = (0.0, [])
    _created = False
