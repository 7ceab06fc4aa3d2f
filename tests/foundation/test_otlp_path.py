"""The OTLP push path into a real receiver (Prometheus 3's OTLP endpoint), and forked workers."""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path

from covet_fixtures import launch

from covet_otel.catalogue import CATALOGUE

SYSTEM_SDK = sorted(d.name for d in CATALOGUE if d.group == "system" and d.source == "sdk")


def test_otlp_delivers_the_same_names_and_labels_as_the_embedded_endpoint(
    prometheus_factory, tmp_path
) -> None:
    prom = prometheus_factory(scrape_self=False)
    script = tmp_path / "otlp_app.py"
    script.write_text("import time\ntime.sleep(60)\n")
    pushing = launch(
        [sys.executable, str(script)],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": prom.otlp_endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_SERVICE_NAME": "otlp-app",
        },
        prometheus=False,
    )
    embedded = launch([sys.executable, str(script)])
    try:
        scraped = embedded.scrape()
        result = prom.wait_for(
            '{__name__=~"covet_.*", job="otlp-app"}',
            lambda r: {s["metric"]["__name__"] for s in r} >= set(SYSTEM_SDK),
            timeout=30,
        )
        at_prometheus = {
            (
                s["metric"]["__name__"],
                tuple(sorted(k for k in s["metric"] if k not in ("__name__", "job", "instance"))),
            )
            for s in result
        }
        on_endpoint = {
            (name, tuple(sorted(k for k, _ in labels)))
            for (name, labels) in scraped.samples
            if name.startswith("covet_")
        }
        assert at_prometheus == on_endpoint
        instances = {s["metric"]["instance"] for s in result}
        assert len(instances) == 1 and len(instances.pop()) == 36  # service.instance.id
    finally:
        pushing.stop()
        embedded.stop()


FORKING_APP = """
import os, time
import covet_otel

children = []
for i in range(3):
    pid = os.fork()
    if pid == 0:
        ballast = bytearray((i + 1) * 64 * 1024 * 1024)  # each worker's own, distinct RSS
        for j in range(0, len(ballast), 4096):
            ballast[j] = 1
        time.sleep(4)
        covet_otel.shutdown()  # flush this worker's last points
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
time.sleep(2)
"""


def test_forked_workers_report_their_own_instance_and_process_figures(
    prometheus_factory, tmp_path: Path
) -> None:
    prom = prometheus_factory(scrape_self=False)
    script = tmp_path / "forking_app.py"
    script.write_text(textwrap.dedent(FORKING_APP))
    app = launch(
        [sys.executable, str(script)],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": prom.otlp_endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_SERVICE_NAME": "prefork",
        },
        prometheus=False,
    )
    try:
        app.proc.wait(60)
        assert app.proc.returncode == 0, app.output()
        result = prom.wait_for(
            'max_over_time(covet_process_memory_rss_bytes{job="prefork"}[5m])',
            lambda r: len(r) >= 4,
            timeout=20,
        )
        rss = sorted(float(s["value"][1]) for s in result)
        assert len({s["metric"]["instance"] for s in result}) == 4  # parent + 3 workers
        mib = 1024 * 1024
        # workers hold 64, 128 and 192 MiB of ballast on top of the parent's footprint
        steps = [b - a for a, b in itertools.pairwise(rss)]
        assert all(50 * mib < step < 80 * mib for step in steps), [r / mib for r in rss]
    finally:
        app.stop()
