"""Export set-up for short-lived job processes (backup wrappers, migration runs).

A job lives seconds to hours and then exits: a scrape endpoint would mostly be scraped while
nothing happened, or not at all. A job therefore pushes OTLP when an endpoint is configured and
flushes before exiting; with no endpoint it records into nothing and says so once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys

from .. import configuration
from .. import settings as settings_module

_logger = logging.getLogger("covet_otel")
_OTLP_VARS = ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def configure_for_job(service_name: str | None = None) -> bool:
    """Configure this process as a job unless something configured it already (the launcher,
    the app). True when metrics will be exported. Never raises: a job runs without telemetry
    rather than not at all, and the reason is printed to stderr."""
    try:
        if configuration.current_pipeline() is not None:
            return True
        env = dict(os.environ)
        if service_name and not env.get("OTEL_SERVICE_NAME"):
            # the resource reads os.environ itself; the job's own child gets the original
            # environment from the caller
            os.environ["OTEL_SERVICE_NAME"] = service_name
            env["OTEL_SERVICE_NAME"] = service_name
        if not env.get("OTEL_METRICS_EXPORTER") and not any(env.get(v) for v in _OTLP_VARS):
            print(
                "covet-otel: OTEL_EXPORTER_OTLP_ENDPOINT is not set: this job's metrics are not "
                "exported (a short-lived job cannot be scraped; point it at a collector)",
                file=sys.stderr,
            )
            env["OTEL_METRICS_EXPORTER"] = "none"
        job_settings = settings_module.load(env)
        if "COVET_SYSTEM_METRICS" not in env:
            # host figures come from the long-running processes; a job would add one short
            # series per run to every system panel
            job_settings = dataclasses.replace(job_settings, system_metrics=False)
        pipeline = configuration.configure(job_settings, environ=env)
        return pipeline is not None and bool(pipeline.exporters)
    except Exception as exc:
        print(f"covet-otel: metrics disabled for this job: {exc}", file=sys.stderr)
        return False


def flush(timeout_millis: float = 10_000) -> bool:
    """Export everything recorded so far, then stop exporting. False when the SDK reports a
    failure (it reports a dead endpoint in its own log; the wait is bounded by the OTLP timeout)."""
    try:
        pipeline = configuration.current_pipeline()
        if pipeline is None:
            return True
        ok = pipeline.provider.force_flush(timeout_millis=timeout_millis)
        configuration.shutdown()
        return bool(ok)
    except Exception as exc:
        _logger.warning("covet-otel: flushing job metrics failed: %s", exc)
        return False
