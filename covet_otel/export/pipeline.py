"""Builds the MeterProvider: which readers export where, the views, fork handling.

Exporter choice: OTEL_METRICS_EXPORTER wins when set; otherwise OTLP/HTTP when an OTLP endpoint
variable is set, else the embedded Prometheus endpoint on 127.0.0.1:9464.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, Resource

from .. import instruments
from ..catalogue import BYTES_BUCKETS, SECONDS_BUCKETS
from ..settings import Settings, SettingsError
from . import producer, ratelimit, workers
from .resource import new_instance_id

_logger = logging.getLogger("covet_otel")

DEFAULT_EXPORT_INTERVAL_MS = 15_000
SHUTDOWN_TIMEOUT_MS = 2_000
_OTLP_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


@dataclass
class Pipeline:
    """What configure() built, so it can be inspected and shut down."""

    provider: MeterProvider
    exporters: list[str]
    prometheus_address: tuple[str, int] | None = None
    readers: list[MetricReader] = field(default_factory=list)
    _server: Any = None
    _stopped: bool = False
    started: float = field(default_factory=time.monotonic)

    def shutdown(self, timeout_millis: float = SHUTDOWN_TIMEOUT_MS, *, at_exit: bool = False) -> None:
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self._at_exit)
        # Stopping the endpoint waits for its poll loop (up to 0.5 s); at interpreter exit its
        # daemon thread simply ends, so only an explicit shutdown frees the port.
        if self._server is not None and not at_exit:
            self._server.shutdown()
            self._server.server_close()
        self._server = None
        self.provider.shutdown(timeout_millis=timeout_millis)

    def _at_exit(self) -> None:
        try:
            _say_if_jobs_unscraped(self)
        finally:
            self.shutdown(at_exit=True)


# A process that lives shorter than this on the embedded endpoint was most likely never scraped
# while its job ran: two of Prometheus's usual 15 s scrape intervals.
SHORT_LIVED_SECONDS = 30.0


def _say_if_jobs_unscraped(pipeline: Pipeline) -> None:
    """`opentelemetry-instrument alembic upgrade head` without OTLP records its migration on an
    endpoint that dies with the process: say once, on stderr, how to keep such figures."""
    try:
        lived = time.monotonic() - pipeline.started
        if (
            "prometheus" not in pipeline.exporters
            or len(pipeline.exporters) != 1
            or lived >= SHORT_LIVED_SECONDS
        ):
            return
        if workers.share_for_forked_child() is not None and pipeline._server is None:
            return  # a pre-fork worker: its figures live on in the parent's endpoint
        recorded = sorted(
            inst.definition.name
            for inst in instruments.registered()
            if inst.definition.group == "backup_migration"
            and inst.definition.kind in ("counter", "histogram")
            and any(getattr(series, "count", getattr(series, "value", 0)) for _, series in inst.items())
        )
        if not recorded:
            return
        kind = "migrate" if any("migration" in name for name in recorded) else "backup --name NAME"
        command = " ".join([os.path.basename(sys.argv[0]) or "COMMAND", *sys.argv[1:]])
        print(
            f"covet-otel: this process recorded {', '.join(recorded)} on its embedded /metrics "
            f"endpoint and ends {lived:.1f} s after start-up, before a scrape could collect them: "
            "they are lost. To keep them, set OTEL_EXPORTER_OTLP_ENDPOINT (pushed to a collector "
            f"and flushed at exit), or run it as `covet-otel job {kind} -- {command}`.",
            file=sys.stderr,
            flush=True,
        )
    except Exception:  # at interpreter exit: never a traceback of ours
        pass


def exporter_names(env: Mapping[str, str]) -> list[str]:
    raw = env.get("OTEL_METRICS_EXPORTER")
    if raw is not None and raw.strip():
        names = [n.strip() for n in raw.split(",") if n.strip()]
        return [] if names == ["none"] else names
    if any(env.get(var) for var in _OTLP_ENDPOINT_VARS):
        return ["otlp"]
    return ["prometheus"]


def views() -> list[View]:
    """Second- and byte-scale buckets for SDK histograms too (the SDK defaults are for ms)."""
    return [
        View(
            instrument_type=Histogram,
            instrument_unit="s",
            aggregation=ExplicitBucketHistogramAggregation(boundaries=SECONDS_BUCKETS),
        ),
        View(
            instrument_type=Histogram,
            instrument_unit="By",
            aggregation=ExplicitBucketHistogramAggregation(boundaries=BYTES_BUCKETS),
        ),
    ]


def build(settings: Settings, resource: Resource, env: Mapping[str, str] | None = None) -> Pipeline:
    env = os.environ if env is None else env
    names = exporter_names(env)
    readers: list[MetricReader] = []
    prometheus_address: tuple[str, int] | None = None
    server = None
    for name in names:
        if name == "prometheus":
            share = workers.share_for_spawned_worker()
            if share is not None:
                # a spawned worker of a process that serves /metrics: that process serves ours too
                workers.start_writer(share)
                continue
            reader, server, prometheus_address = _prometheus_reader(settings, env)
            readers.append(reader)
            if server is not None:
                workers.start_sharing()
        else:
            readers.append(PeriodicExportingMetricReader(_exporter(name, env), _interval(env)))
    ratelimit.install()
    provider = MeterProvider(metric_readers=readers, resource=resource, views=views(), shutdown_on_exit=False)
    producer.attach(provider)
    pipeline = Pipeline(provider, names, prometheus_address, readers, server)
    atexit.register(pipeline._at_exit)
    _watch_fork(pipeline)
    return pipeline


def _interval(env: Mapping[str, str]) -> float | None:
    # None lets the SDK read OTEL_METRIC_EXPORT_INTERVAL itself, so the standard variable wins
    return None if env.get("OTEL_METRIC_EXPORT_INTERVAL") else DEFAULT_EXPORT_INTERVAL_MS


def _exporter(name: str, env: Mapping[str, str]) -> MetricExporter:
    if name == "otlp":
        protocol = env.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") or env.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if protocol == "grpc":
            try:
                from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                    OTLPMetricExporter as GrpcExporter,
                )
            except ImportError as exc:
                raise SettingsError(
                    "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc "
                    "installed; covet-otel ships OTLP/HTTP (http/protobuf)"
                ) from exc
            return GrpcExporter()
        if protocol != "http/protobuf":
            raise SettingsError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: expected http/protobuf or grpc"
            )
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    if name == "console":
        return ConsoleMetricExporter()
    from opentelemetry.util._importlib_metadata import entry_points

    for entry_point in entry_points(group="opentelemetry_metrics_exporter", name=name):
        return entry_point.load()()
    raise SettingsError(
        f"OTEL_METRICS_EXPORTER names {name!r}, which is not installed: expected otlp, prometheus, "
        "console, none, or an installed opentelemetry_metrics_exporter"
    )


def _prometheus_reader(
    settings: Settings, env: Mapping[str, str]
) -> tuple[MetricReader, Any, tuple[str, int] | None]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry

    from .. import settings as settings_module
    from .exposition import start_server

    # The standard variables win over ours, and are held to the same rules: a bad value is the
    # same clear start-up error, not a UnicodeError or OverflowError from the socket layer.
    host = settings.prometheus_host
    raw_host = env.get("OTEL_EXPORTER_PROMETHEUS_HOST")
    if raw_host:
        try:
            host = settings_module.host(raw_host)
        except ValueError:
            raise SettingsError(
                f"OTEL_EXPORTER_PROMETHEUS_HOST={settings_module.shown(raw_host)} is not valid: expected "
                + settings_module.describe_accepts("prometheus_host")
            ) from None
    port = settings.prometheus_port
    raw_port = env.get("OTEL_EXPORTER_PROMETHEUS_PORT")
    if raw_port:
        try:
            port = settings_module.parse_port(raw_port)
        except ValueError:
            raise SettingsError(
                f"OTEL_EXPORTER_PROMETHEUS_PORT={settings_module.shown(raw_port)} is not valid: expected "
                + settings_module.describe_accepts("prometheus_port")
            ) from None
    # a registry of our own: the app's prometheus_client metrics and a second configure() in
    # the same process cannot collide with ours
    registry = CollectorRegistry(auto_describe=False)
    # scope labels (otel_scope_*) would add three labels to every series and say nothing a
    # covet_ name does not: every covet_ series comes from the covet_otel scope
    reader = PrometheusMetricReader(registry=registry, scope_info_enabled=False)
    try:
        # prometheus_client's endpoint, with covet-otel's series written by our own writer
        server, _thread = start_server(port, host, registry, reader)
    except OSError as exc:
        _logger.warning(
            "covet-otel: cannot serve /metrics on %s:%s (%s); the application runs on without the "
            "embedded endpoint. Set OTEL_EXPORTER_PROMETHEUS_PORT to a free port, or push OTLP.",
            host,
            port,
            exc,
        )
        return reader, None, None
    return reader, server, (host, server.server_address[1])


def _watch_fork(pipeline: Pipeline) -> None:
    if not hasattr(os, "register_at_fork"):
        return

    def after_in_child() -> None:
        # A pre-fork worker is a new process: its own instance id and series from zero. The SDK
        # restarts its own export thread. This also runs in subprocess's child before exec, so it
        # stays cheap and silent. The embedded endpoint's thread is not inherited: a worker hands
        # its series to the parent's endpoint through the share directory (export/workers.py).
        share = workers.share_for_forked_child()
        auto_health = sys.modules.get("covet_otel.health.auto")
        if auto_health is not None:
            auto_health.after_fork_in_child()
        instruments.reset_all()
        producer.reset_states()
        workers.reset_owner_state()
        if share is not None:
            workers.start_writer(share)
        config = pipeline.provider._sdk_config
        config.resource = config.resource.merge(Resource({SERVICE_INSTANCE_ID: new_instance_id()}))

    os.register_at_fork(after_in_child=after_in_child)
