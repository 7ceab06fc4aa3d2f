"""Collector load: memory and CPU of otelcol-covet under app-like load, and the most points/s it takes.

    python benchmarks/collector_load.py [--processes 10] [--interval 15] [--duration 120]
                                        [--series 400] [--max-seconds 30] [--quick]

Everything runs on loopback: the collector built by collector/build.sh (collector/config.yaml, with
a local Redis from tests/harness when redis-server is installed, and host metrics), and:

1. steady load: `--processes` app-like processes, each a real opentelemetry-sdk MeterProvider with
   the OTLP/HTTP exporter pushing every `--interval` s, with about `--series` series of the shapes an
   app under covet_otel produces (HTTP and DB duration histograms, request counters, pool and system
   gauges). Over `--duration` s the script samples the collector's RSS and CPU (psutil) and reads
   the collector's own counters (otelcol_receiver_accepted_metric_points_total, refused, dropped).
2. the largest rate: `--senders` processes POST one pre-encoded OTLP request (`--request-points`
   points, 20,000 by default) back to back for `--max-seconds` s; the accepted rate is read from the
   collector's own telemetry, and the run says whether any point was refused (memory_limiter) or the
   exporter fell behind.

Both loops are bounded in count and time and stop by themselves.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# the script's folder goes last: a script there named like a stdlib module must not shadow it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
sys.path.insert(0, str(REPO / "tests"))

import httpx  # noqa: E402
import psutil  # noqa: E402

ROUTES = [f"/api/v1/resource{i}/{{id}}" for i in range(20)]
METHODS = ["GET", "POST"]
STATUSES = ["200", "404", "500"]
OPERATIONS = ["select", "insert", "update", "delete", "other"]
SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def collector_binary() -> Path:
    out = subprocess.run(
        ["bash", str(REPO / "collector" / "build.sh"), "--print-binary"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    path = Path(out)
    if not path.exists():
        sys.exit(f"{path} does not exist: run collector/build.sh first")
    return path


def make_provider(reader: Any, index: int) -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    return MeterProvider(
        metric_readers=[reader],
        resource=Resource.create(
            {"service.name": "bench-app", "service.instance.id": f"bench-{index}-{os.getpid()}"}
        ),
    )


def record_app_like(provider: Any, series: int, rng: random.Random) -> Any:
    """Create instruments and record about `series` series; returns a callable that records a round."""
    meter = provider.get_meter("covet_otel", "0.1.0")
    http_duration = meter.create_histogram(
        "covet.http.request.duration", unit="s", explicit_bucket_boundaries_advisory=SECONDS_BUCKETS
    )
    http_requests = meter.create_counter("covet.http.requests", unit="{request}")
    db_duration = meter.create_histogram(
        "covet.db.query.duration", unit="s", explicit_bucket_boundaries_advisory=SECONDS_BUCKETS
    )
    pool = meter.create_gauge("covet.db.connections.active", unit="{connection}")
    cpu = meter.create_gauge("covet.system.cpu.usage", unit="%")
    http_keys = [{"method": m, "route": r, "status": s} for r in ROUTES for m in METHODS for s in STATUSES]
    per_http = max(1, (series - 20) // 2)
    http_keys = http_keys[:per_http]

    def one_round() -> None:
        for attrs in http_keys:
            http_duration.record(rng.random() * 0.2, attrs)
            http_requests.add(1, attrs)
        for op in OPERATIONS:
            db_duration.record(rng.random() * 0.05, {"operation": op})
        for i in range(15):
            pool.set(rng.randint(0, 20), {"pool": f"pool{i}"})
        cpu.set(rng.random() * 100)

    return one_round


def app_process(index: int, endpoint: str, interval: float, series: int, stop_at: float) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics", timeout=10),
        export_interval_millis=int(interval * 1000),
    )
    provider = make_provider(reader, index)
    one_round = record_app_like(provider, series, random.Random(index))
    while time.time() < stop_at:
        one_round()
        time.sleep(1.0)
    provider.shutdown()


def encoded_request(points: int) -> bytes:
    """One OTLP ExportMetricsServiceRequest with about `points` data points, encoded once."""
    from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = make_provider(reader, 0)
    meter = provider.get_meter("covet_otel", "0.1.0")
    counter = meter.create_counter("covet.bench.points", unit="{point}")
    for i in range(points):
        counter.add(1, {"route": f"/r{i % 500}", "status": str(i // 500)})  # `points` distinct series
    data = reader.get_metrics_data()
    provider.shutdown()
    return encode_metrics(data).SerializeToString()


def blaster(url: str, body: bytes, stop_at: float, counter: Any) -> None:
    sent = 0
    with httpx.Client(timeout=10) as client:
        while time.time() < stop_at:
            response = client.post(url, content=body, headers={"Content-Type": "application/x-protobuf"})
            if response.status_code == 200:
                sent += 1
    with counter.get_lock():
        counter.value += sent


def telemetry(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=5).text):
        for sample in family.samples:
            if sample.name.startswith("otelcol_"):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def point_counters(url: str) -> dict[str, float]:
    t = telemetry(url)
    return {
        "accepted": t.get("otelcol_receiver_accepted_metric_points_total", 0.0),
        "refused": t.get("otelcol_receiver_refused_metric_points_total", 0.0),
        "sent": t.get("otelcol_exporter_sent_metric_points_total", 0.0),
        "send_failed": t.get("otelcol_exporter_send_failed_metric_points_total", 0.0),
    }


class Sampler:
    """RSS and CPU of one process, sampled every second."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.rss: list[int] = []
        self.cpu_start = self._cpu()
        self.t_start = time.monotonic()

    def _cpu(self) -> float:
        times = self.proc.cpu_times()
        return times.user + times.system

    def sample(self) -> None:
        self.rss.append(self.proc.memory_info().rss)

    def result(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.t_start
        cpu = self._cpu() - self.cpu_start
        return {
            "rss_mib_max": max(self.rss) / 2**20,
            "rss_mib_last": self.rss[-1] / 2**20,
            "cpu_percent_of_one_core": 100 * cpu / elapsed,
            "seconds": elapsed,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--interval", type=float, default=15.0, help="push interval of each app (s)")
    parser.add_argument("--duration", type=float, default=120.0, help="steady-load window (s)")
    parser.add_argument("--series", type=int, default=400, help="series per app process")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="length of the max-rate run (s)")
    parser.add_argument("--request-points", type=int, default=20000, help="points per request of the max run")
    parser.add_argument("--senders", type=int, default=2, help="sender processes of the max run")
    parser.add_argument("--quick", action="store_true", help="short run: 30 s window, 5 s interval, 10 s max")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.interval, args.max_seconds = 30.0, 5.0, 10.0

    binary = collector_binary()
    workdir = Path(tempfile.mkdtemp(prefix="covet-collector-bench-"))
    ports = {name: free_port() for name in ("prom", "http", "grpc", "health", "telemetry")}
    env = dict(os.environ)
    env.update(
        {
            "COVET_COLLECTOR_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports['prom']}",
            "COVET_COLLECTOR_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
            "COVET_COLLECTOR_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
            "COVET_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
            "COVET_COLLECTOR_TELEMETRY_PORT": str(ports["telemetry"]),
            "COVET_COLLECTOR_LOG_LEVEL": "warn",
        }
    )
    redis = None
    try:
        from harness import Redis

        redis = Redis()
        redis.start()
        env["COVET_REDIS_ENDPOINT"] = redis.address
    except BaseException as exc:  # no redis-server here: the Redis receiver only logs its failures
        print(f"(no local Redis: {exc}; the Redis receiver scrapes nothing)", file=sys.stderr)
        redis = None
    log = open(workdir / "collector.log", "wb")
    collector = subprocess.Popen(
        [str(binary), "--config", str(REPO / "collector" / "config.yaml")], env=env, stdout=log, stderr=log
    )
    telemetry_url = f"http://127.0.0.1:{ports['telemetry']}/metrics"
    endpoint = f"http://127.0.0.1:{ports['http']}"
    results: dict[str, Any] = {
        "binary_mib": binary.stat().st_size / 2**20,
        "processes": args.processes,
        "interval_s": args.interval,
        "series_per_process": args.series,
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{ports['health']}/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or collector.poll() is not None:
                sys.exit(f"the collector did not start; see {workdir / 'collector.log'}")
            time.sleep(0.2)
        time.sleep(2)
        idle = Sampler(collector.pid)
        for _ in range(5):
            idle.sample()
            time.sleep(1)
        results["idle"] = idle.result()

        # 1. steady load
        stop_at = time.time() + args.duration
        apps = [
            mp.Process(target=app_process, args=(i, endpoint, args.interval, args.series, stop_at))
            for i in range(args.processes)
        ]
        for app in apps:
            app.start()
        time.sleep(min(args.interval, args.duration / 3))  # let the first pushes land
        before = point_counters(telemetry_url)
        steady = Sampler(collector.pid)
        while time.time() < stop_at - 1:
            steady.sample()
            time.sleep(1)
        after = point_counters(telemetry_url)
        for app in apps:
            app.join(timeout=args.interval + 15)
            if app.is_alive():
                app.terminate()
        results["steady"] = steady.result()
        window = results["steady"]["seconds"]
        results["steady"]["points_per_s"] = (after["accepted"] - before["accepted"]) / window
        results["steady"]["refused"] = after["refused"] - before["refused"]

        # 2. largest rate
        points = args.request_points
        body = encoded_request(points)
        counter = mp.Value("l", 0)
        before = point_counters(telemetry_url)
        peak = Sampler(collector.pid)
        stop_at = time.time() + args.max_seconds
        url = f"{endpoint}/v1/metrics"
        senders = [
            mp.Process(target=blaster, args=(url, body, stop_at, counter)) for _ in range(args.senders)
        ]
        for sender in senders:
            sender.start()
        while time.time() < stop_at:
            peak.sample()
            time.sleep(1)
        for sender in senders:
            sender.join(timeout=30)
        results["max"] = peak.result()
        time.sleep(6)  # the batch processor's timeout: let the last batch reach the exporter
        after = point_counters(telemetry_url)
        seconds = args.max_seconds
        results["max"].update(
            {
                "request_points": points,
                "request_kib": len(body) / 1024,
                "requests_ok": counter.value,
                "accepted_points_per_s": (after["accepted"] - before["accepted"]) / seconds,
                "exported_points_per_s": (after["sent"] - before["sent"]) / seconds,
                "refused": after["refused"] - before["refused"],
                "send_failed": after["send_failed"] - before["send_failed"],
            }
        )
    finally:
        collector.terminate()
        try:
            collector.wait(15)
        except subprocess.TimeoutExpired:
            collector.kill()
        log.close()
        if redis is not None:
            redis.cleanup()

    if args.json:
        print(json.dumps(results, indent=2))
        return
    idle, steady, peak = results["idle"], results["steady"], results["max"]
    print(f"otelcol-covet {results['binary_mib']:.0f} MiB binary, {os.cpu_count()} cores")
    print(
        f"idle (Redis + host scrapes only): RSS {idle['rss_mib_max']:.0f} MiB, "
        f"CPU {idle['cpu_percent_of_one_core']:.1f}% of one core"
    )
    print(
        f"steady: {args.processes} processes x ~{args.series} series every {args.interval:g} s: "
        f"{steady['points_per_s']:.0f} points/s accepted, RSS max {steady['rss_mib_max']:.0f} MiB, "
        f"CPU {steady['cpu_percent_of_one_core']:.1f}% of one core, refused {steady['refused']:.0f}"
    )
    print(
        f"max: {peak['accepted_points_per_s']:.0f} points/s accepted "
        f"({peak['exported_points_per_s']:.0f}/s exported), RSS max {peak['rss_mib_max']:.0f} MiB, "
        f"CPU {peak['cpu_percent_of_one_core']:.0f}% of one core, refused {peak['refused']:.0f}, "
        f"send failed {peak['send_failed']:.0f}"
    )


if __name__ == "__main__":
    main()
