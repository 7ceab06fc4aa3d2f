"""configure(): the one call that sets a process up, used by the launcher and by hand."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping

from opentelemetry import metrics, trace

from . import settings as settings_module
from .export import pipeline as pipeline_module
from .export import resource as resource_module
from .export.pipeline import Pipeline
from .settings import Settings, SettingsError
from .system import SystemMetrics

_logger = logging.getLogger("covet_otel")
_lock = threading.Lock()
_pipeline: Pipeline | None = None
_system: SystemMetrics | None = None


def configure(
    settings: Settings | None = None, *, environ: Mapping[str, str] | None = None
) -> Pipeline | None:
    """Set up metrics export for this process (idempotent: later calls return the first result).

    Raises SettingsError, naming the variable, when a COVET_* or exporter setting is unusable.
    Returns None when COVET_ENABLED=false.
    """
    global _pipeline, _system
    with _lock:
        if _pipeline is not None:
            return _pipeline
        env = os.environ if environ is None else environ
        settings = settings or settings_module.load(env)
        settings_module.set_current(settings)
        if not settings.enabled or _multiprocessing_helper():
            return None
        resource = resource_module.build(env)
        built = pipeline_module.build(settings, resource, env)
        metrics.set_meter_provider(built.provider)
        _configure_tracing(resource, env)
        if settings.system_metrics:
            _system = SystemMetrics(settings.disk_paths)
            _system.register()
        _pipeline = built
        if settings.health_port is not None and not _spawned_child():
            from .health import auto

            auto.start(settings.health_port, settings.health_host, settings.disk_paths[0])
        return built


def _spawned_child() -> bool:
    """A multiprocessing child started by `spawn` (`uvicorn --workers` workers, a process pool):
    the process that started it serves the health port; a second bind would only fail."""
    return any("spawn_main" in arg for arg in getattr(sys, "orig_argv", sys.argv))


def _multiprocessing_helper() -> bool:
    """True in Python's multiprocessing resource tracker. `opentelemetry-instrument` configures
    every Python process it starts, and this one (started by `uvicorn --workers`, or any pool)
    runs no application code: measured, it added its own memory to the workers' sum on the
    embedded endpoint and pushed an extra OTLP instance of system series alone."""
    argv = getattr(sys, "orig_argv", sys.argv)
    return any("multiprocessing.resource_tracker" in arg for arg in argv)


def current_pipeline() -> Pipeline | None:
    return _pipeline


def shutdown() -> None:
    """Flush and stop exporting (tests, and short-lived jobs that want to be sure)."""
    global _pipeline, _system
    with _lock:
        auto = sys.modules.get("covet_otel.health.auto")
        if auto is not None:
            auto.stop()
        if _system is not None:
            _system.unregister()
            _system = None
        if _pipeline is not None:
            _pipeline.shutdown()
            _pipeline = None


def _configure_tracing(resource, env: Mapping[str, str]) -> None:
    # Metrics never need spans: tracing is set up only when OTEL_TRACES_EXPORTER asks for it.
    raw = env.get("OTEL_TRACES_EXPORTER", "").strip()
    names = [n.strip() for n in raw.split(",") if n.strip() and n.strip() != "none"]
    if not names:
        return
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.util._importlib_metadata import entry_points

    provider = TracerProvider(resource=resource)
    for name in names:
        found = list(entry_points(group="opentelemetry_traces_exporter", name=name))
        if not found:
            raise SettingsError(
                f"OTEL_TRACES_EXPORTER names {name!r}, which is not installed: expected none or an "
                "installed opentelemetry_traces_exporter such as otlp_proto_http"
            )
        provider.add_span_processor(BatchSpanProcessor(found[0].load()()))
    trace.set_tracer_provider(provider)
