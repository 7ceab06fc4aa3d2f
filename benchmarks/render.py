"""Render time of the embedded /metrics endpoint at 1k and 10k series (budget: at most 100 ms at 10k).

The process is set up as the launcher does it (covet_otel.configure(): embedded Prometheus endpoint,
default views), then filled with series spread evenly over five catalogue metrics a large service
has: four histograms (HTTP duration, HTTP response size, database query duration, cache command
duration) and one counter (HTTP requests). A "series" is one label set of one metric, what
COVET_MAX_SERIES_PER_METRIC counts; a histogram series is ~20 lines of exposition text. Each render
is a real HTTP GET of /metrics: whole-process CPU (time.process_time, server thread included) and
wall time per scrape, median of the rounds.

    python benchmarks/render.py [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
from _util import table  # noqa: E402
from prometheus_client import generate_latest  # noqa: E402

import covet_otel  # noqa: E402
from covet_otel import instruments  # noqa: E402
from covet_otel.catalogue import BY_NAME  # noqa: E402
from covet_otel.export import exposition  # noqa: E402

BUDGET_MS = 100.0
LARGE_BUDGET_MS = 250.0  # at LABEL_SETS label sets (issue 18)
# time series (sample lines) on /metrics, as Prometheus counts them: a histogram label set is one
# series per bucket plus _sum and _count
SIZES = (1_000, 10_000)
LABEL_SETS = 10_000  # the full run also renders this many label sets (~140k time series), for scale
# (metric, label values for the i-th label set): unbounded labels carry the index
METRICS = (
    ("covet_http_request_duration_seconds", lambda i: ("GET", f"/api/v1/resource{i}/{{id}}", "200")),
    ("covet_http_response_body_size_bytes", lambda i: ("GET", f"/api/v1/resource{i}/{{id}}", "200")),
    ("covet_http_requests_total", lambda i: ("GET", f"/api/v1/resource{i}/{{id}}", "200")),
    ("covet_db_query_duration_seconds", lambda i: (f"pool{i}", "SELECT", "success")),
    ("covet_cache_operation_duration_seconds", lambda i: (f"CMD{i}", "success")),
)


def _lines(definition: instruments.MetricDef) -> int:
    return len(definition.buckets) + 3 if definition.kind == "histogram" else 1


def fill(time_series: int | None = None, label_sets: int | None = None) -> tuple[int, int]:
    """Add label sets round-robin over METRICS, each with a few values, until the total reaches
    `time_series` sample lines or `label_sets` label sets; returns both totals."""
    made = [len(instruments.histogram(n).items()) if BY_NAME[n].kind == "histogram"
            else len(instruments.counter(n).items()) for n, _ in METRICS]  # fmt: skip
    while True:
        total_sets = sum(made)
        total_lines = sum(m * _lines(BY_NAME[n]) for m, (n, _) in zip(made, METRICS))
        if (time_series and total_lines >= time_series) or (label_sets and total_sets >= label_sets):
            return total_lines, total_sets
        k = total_sets % len(METRICS)
        name, labels = METRICS[k]
        if BY_NAME[name].kind == "histogram":
            series = instruments.histogram(name).series(labels(made[k]))
            for value in (0.003, 0.04, 2.5):
                series.record(value)
        else:
            instruments.counter(name).series(labels(made[k])).add(3)
        made[k] += 1


def scrape(url: str, client: httpx.Client) -> tuple[float, float, int]:
    """CPU and wall seconds of one GET /metrics (gzip accepted, as Prometheus asks), body bytes."""
    cpu, wall = time.process_time(), time.perf_counter()
    body = client.get(url, headers={"Accept-Encoding": "gzip"}).content
    return time.process_time() - cpu, time.perf_counter() - wall, len(body)


def writer_cpu(reader: object, rounds: int) -> float:
    """CPU seconds of covet-otel's own writer (its series to exposition text, export/exposition.py);
    the rest of a scrape is the SDK reader's collection of other instruments, HTTP and gzip."""
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        exposition.render_covet(reader._covet_state, True, exposition.TEXT, "underscores")  # type: ignore[attr-defined]
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def measure(url: str, client: httpx.Client, reader: object, rounds: int, profile: bool) -> dict:
    scrape(url, client)  # warm-up
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        exposition.render(reader._registry, reader, generate_latest)  # type: ignore[attr-defined]
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    samples = [scrape(url, client) for _ in range(rounds)]
    return {
        "cpu_ms": statistics.median(s[0] for s in samples) * 1e3,
        "wall_ms": statistics.median(s[1] for s in samples) * 1e3,
        "bytes": samples[0][2],
        "writer_ms": writer_cpu(reader, rounds) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two scrapes per size, no 10k label set row")
    parser.add_argument("--profile", action="store_true", help="cProfile the text exposition at each size")
    args = parser.parse_args()
    rounds = 2 if args.quick else 7
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COVET_"))}
    env.update(
        OTEL_EXPORTER_PROMETHEUS_PORT="0",
        COVET_SYSTEM_METRICS="false",  # its series would blur the count
        COVET_MAX_SERIES_PER_METRIC=str(LABEL_SETS),
    )
    pipeline = covet_otel.configure(environ=env)
    assert pipeline is not None and pipeline.prometheus_address is not None
    url = "http://{}:{}/metrics".format(*pipeline.prometheus_address)
    reader = pipeline.readers[0]
    verdicts = []
    rows = [("time series", "label sets", "bytes (uncompressed)", "CPU per scrape", "of which covet writer",
             "wall per scrape", "budget")]  # fmt: skip
    targets = [("time_series", n) for n in SIZES] + ([] if args.quick else [("label_sets", LABEL_SETS)])
    with httpx.Client(timeout=120) as client:
        for kind, n in targets:
            lines, sets = fill(**{kind: n})
            r = measure(url, client, reader, rounds if kind == "time_series" else 3, args.profile)
            budget = ""
            if kind == "time_series" and n == 10_000:
                budget = "met" if r["cpu_ms"] <= BUDGET_MS else f"missed by {r['cpu_ms'] - BUDGET_MS:.0f} ms"
                verdicts.append(
                    f"Budget: /metrics render at 10k time series (CPU per scrape): {r['cpu_ms']:.1f} ms "
                    f"against {BUDGET_MS:.0f} ms -> {budget}"
                )
            elif kind == "label_sets":
                limit = LARGE_BUDGET_MS
                budget = "met" if r["cpu_ms"] <= limit else f"missed by {r['cpu_ms'] - limit:.0f} ms"
                verdicts.append(
                    f"Budget: /metrics render at 10k label sets, ~{lines // 1000}k time series (CPU per "
                    f"scrape): {r['cpu_ms']:.1f} ms against {limit:.0f} ms -> {budget}"
                )
            rows.append((f"{lines:,}", f"{sets:,}", f"{r['bytes']:,}", f"{r['cpu_ms']:.1f} ms",
                         f"{r['writer_ms']:.1f} ms", f"{r['wall_ms']:.1f} ms", budget))  # fmt: skip
    load1, load5, _ = os.getloadavg()
    print(
        f"median of {rounds} scrapes per size (3 for the last row), GET /metrics with gzip; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load1:.2f} / {load5:.2f}\n"
    )
    print(table(rows))
    print("\n" + "\n".join(verdicts))
    covet_otel.shutdown()


if __name__ == "__main__":
    main()
