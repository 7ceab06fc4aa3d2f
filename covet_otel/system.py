"""System group: host and process figures from psutil, read when metrics are collected.

Nothing here runs on the application's hot path: each figure is a callback that the exporter
calls at collection time (every scrape or export interval).
"""

from __future__ import annotations

import gc
import logging
import os
import resource
from collections.abc import Iterator

import psutil

from . import instruments
from .instruments import Observation

_logger = logging.getLogger("covet_otel")


class SystemMetrics:
    """Registers the system group's callbacks; `unregister()` takes them away again."""

    def __init__(self, disk_paths: tuple[str, ...]) -> None:
        self.disk_paths = disk_paths
        self._process: psutil.Process | None = None
        self._pid = -1
        self._warned_paths: set[str] = set()
        self._registered: list[tuple[instruments.Instrument, object]] = []

    @property
    def process(self) -> psutil.Process:
        # a handle cached across fork would describe the parent, so it is keyed by pid
        pid = os.getpid()
        if self._process is None or self._pid != pid:
            self._process = psutil.Process(pid)
            self._pid = pid
            self._process.cpu_percent(None)
        return self._process

    def register(self) -> None:
        psutil.cpu_percent(None)  # primes the interval: the first real reading covers until now
        pairs = [
            (instruments.gauge("covet_system_cpu_usage_percent"), self.cpu_percent),
            (instruments.gauge("covet_system_memory_usage_bytes"), self.memory_used),
            (instruments.gauge("covet_system_memory_total_bytes"), self.memory_total),
            (instruments.gauge("covet_disk_usage_bytes"), self.disk_used),
            (instruments.gauge("covet_disk_total_bytes"), self.disk_total),
            (instruments.gauge("covet_system_load_average"), self.load_average),
            (instruments.counter("covet_process_cpu_seconds_total"), self.process_cpu),
            (instruments.gauge("covet_process_memory_rss_bytes"), self.process_rss),
            (instruments.gauge("covet_process_open_fds"), self.process_fds),
            (instruments.gauge("covet_process_max_fds"), self.process_max_fds),
            (instruments.gauge("covet_process_threads"), self.process_threads),
            (instruments.counter("covet_process_gc_collections_total"), self.gc_collections),
        ]
        for instrument, callback in pairs:
            instrument.observe(callback)
            self._registered.append((instrument, callback))

    def unregister(self) -> None:
        for instrument, callback in self._registered:
            instrument.remove_callback(callback)  # type: ignore[arg-type]
        self._registered.clear()

    def cpu_percent(self) -> Iterator[Observation]:
        yield (), psutil.cpu_percent(None)

    def memory_used(self) -> Iterator[Observation]:
        vm = psutil.virtual_memory()
        yield (), float(vm.total - vm.available)

    def memory_total(self) -> Iterator[Observation]:
        yield (), float(psutil.virtual_memory().total)

    def _disk(self) -> Iterator[tuple[str, object]]:
        for path in self.disk_paths:
            try:
                yield path, psutil.disk_usage(path)
            except OSError as exc:
                if path not in self._warned_paths:
                    self._warned_paths.add(path)
                    _logger.warning("covet-otel: cannot read disk usage of %s: %s", path, exc)

    def disk_used(self) -> Iterator[Observation]:
        for path, usage in self._disk():
            yield (path,), float(usage.used)  # type: ignore[attr-defined]

    def disk_total(self) -> Iterator[Observation]:
        for path, usage in self._disk():
            yield (path,), float(usage.total)  # type: ignore[attr-defined]

    def load_average(self) -> Iterator[Observation]:
        one, five, fifteen = os.getloadavg()
        yield ("1m",), one
        yield ("5m",), five
        yield ("15m",), fifteen

    def process_cpu(self) -> Iterator[Observation]:
        times = self.process.cpu_times()
        yield ("user",), times.user
        yield ("system",), times.system

    def process_rss(self) -> Iterator[Observation]:
        yield (), float(self.process.memory_info().rss)

    def process_fds(self) -> Iterator[Observation]:
        yield (), float(self.process.num_fds())

    def process_max_fds(self) -> Iterator[Observation]:
        yield (), float(resource.getrlimit(resource.RLIMIT_NOFILE)[0])

    def process_threads(self) -> Iterator[Observation]:
        yield (), float(self.process.num_threads())

    def gc_collections(self) -> Iterator[Observation]:
        for generation, stats in enumerate(gc.get_stats()):
            yield (str(generation),), float(stats["collections"])
