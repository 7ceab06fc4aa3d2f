"""Series that the alerts, dashboards and runbooks read but covet-otel does not define: Prometheus's
own, and the collector's own telemetry (docs/collector.md, "The collector's own metrics"). Not
`covet_*`, so not in the catalogue proper; listed here once, with the labels queries may match on
(None: any label, as for ALERTS, whose labels are the alert's)."""

from __future__ import annotations

# `up` from every scrape; ALERTS from the rule evaluator
PROMETHEUS_SERIES: dict[str, tuple[str, ...] | None] = {"up": ("job", "instance"), "ALERTS": None}

# as the built otelcol-covet serves them on its telemetry port; the queue gauges exist only for
# exporters with a sending queue (the agent and remote-write variants)
COLLECTOR_TELEMETRY: dict[str, tuple[str, ...] | None] = {
    "otelcol_receiver_accepted_metric_points_total": ("job", "instance", "receiver", "transport"),
    "otelcol_receiver_refused_metric_points_total": ("job", "instance", "receiver", "transport"),
    "otelcol_exporter_sent_metric_points_total": ("job", "instance", "exporter"),
    "otelcol_exporter_send_failed_metric_points_total": ("job", "instance", "exporter"),
    "otelcol_exporter_queue_size": ("job", "instance", "exporter"),
    "otelcol_exporter_queue_capacity": ("job", "instance", "exporter"),
    "otelcol_process_memory_rss_bytes": ("job", "instance"),
    "otelcol_process_cpu_seconds_total": ("job", "instance"),
}

EXTERNAL_SERIES: dict[str, tuple[str, ...] | None] = {**PROMETHEUS_SERIES, **COLLECTOR_TELEMETRY}
