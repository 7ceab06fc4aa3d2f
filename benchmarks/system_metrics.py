"""Cost of one system-metrics collection (budget: at most 2 ms), and of rendering /metrics.

python benchmarks/system_metrics.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))
from _util import cpu_per_call, table

from covet_otel import instruments
from covet_otel.system import SystemMetrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 20 if args.quick else 200

    system = SystemMetrics(("/",))
    system.register()
    callbacks = [cb for inst in instruments.registered() for cb in inst.callbacks]

    def collect_system() -> None:
        for callback in callbacks:
            list(callback())

    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry, generate_latest

    from covet_otel.export import producer

    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry, scope_info_enabled=False)
    provider = MeterProvider(metric_readers=[reader])
    producer.attach(provider)

    collect = cpu_per_call(collect_system, n)
    render = cpu_per_call(lambda: generate_latest(registry), n)
    rows = [
        ("what", "CPU per collection", "budget"),
        ("system group: all 12 callbacks (psutil)", f"{collect * 1e3:.3f} ms", "2 ms"),
        ("whole /metrics render (system group only)", f"{render * 1e3:.3f} ms", "—"),
    ]
    print(table(rows))
    provider.shutdown()


if __name__ == "__main__":
    main()
