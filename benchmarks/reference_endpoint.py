"""Reference endpoint: a Starlette handler doing 3 asyncpg queries and 2 Redis commands, served by
uvicorn and loaded by wrk, with covet-otel and the tools a user would pick instead side by side
(budget: covet metrics-only keeps at least 0.95 of bare throughput).

  bare              the app as written
  covet             covet_otel.configure() (embedded /metrics endpoint, system metrics) and covet-otel's
                    Starlette, asyncpg and Redis metrics instrumentors: what `opentelemetry-instrument`
                    does with covet-otel installed. Measures HTTP + database + cache.
  upstream-metrics  upstream OTel with spans off: OpenTelemetryMiddleware's HTTP metrics into an SDK
                    MeterProvider, AsyncPGInstrumentor and RedisInstrumentor on a no-op tracer
                    provider (they have no metrics of their own). Measures HTTP only.
  upstream          upstream OTel with spans: the same middleware (spans + HTTP metrics),
                    AsyncPGInstrumentor and RedisInstrumentor spans into an SDK TracerProvider with a
                    BatchSpanProcessor and an exporter that drops them. HTTP metrics; HTTP, database
                    and cache spans.
  instrumentator    prometheus-fastapi-instrumentator's middleware with its default metrics, what a
                    FastAPI user picks today for Prometheus metrics (it works on any Starlette app).
                    Measures HTTP only.
  covet+spans       covet, plus the upstream span instrumentors (their HTTP metrics off: covet records
                    HTTP metrics)

The servers run at the same time, each in its own process pinned to CPU 0; wrk, PostgreSQL and
Redis are pinned to CPU 1 (when two CPUs are available). Runs are interleaved (ABCD DCBA ...) so
that drift on a shared machine hits every variant alike. Besides throughput and latency the
server's own CPU time per request is read from /proc: it is far less sensitive to other load on
the machine than wall-clock figures.

    python benchmarks/reference_endpoint.py [--quick] [--rounds N] [--duration S]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# the script's folder goes last: a script there named like a stdlib module must not shadow it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
import psutil  # noqa: E402
from _util import table  # noqa: E402

VARIANTS = ("bare", "covet", "upstream-metrics", "upstream", "instrumentator", "covet+spans")
# what each variant records, for the tables
MEASURES = {
    "bare": "nothing",
    "covet": "HTTP + DB + cache metrics",
    "upstream-metrics": "HTTP metrics",
    "upstream": "HTTP metrics; HTTP + DB + cache spans",
    "instrumentator": "HTTP metrics",
    "covet+spans": "HTTP + DB + cache metrics and spans",
}
SERVER_CPU, CLIENT_CPU = 0, 1
PATH = "/items/42"
CONNECTIONS = 8
ITEMS = 1000


# ------------------------------------------------------------------------------------------ the app
def build_app(variant: str, dsn: str, redis_url: str) -> Any:
    """The reference application with `variant`'s instrumentation switched on."""
    spans = (
        _setup_upstream(recording=variant != "upstream-metrics")
        if "upstream" in variant or variant == "covet+spans"
        else None
    )
    if variant in ("covet", "covet+spans"):
        import covet_otel
        from covet_otel.instrumentation.asyncpg import AsyncpgMetricsInstrumentor
        from covet_otel.instrumentation.http.frameworks import StarletteMetricsInstrumentor
        from covet_otel.instrumentation.redis import RedisMetricsInstrumentor

        covet_otel.configure(environ={**os.environ, "OTEL_EXPORTER_PROMETHEUS_PORT": "0"})
        StarletteMetricsInstrumentor().instrument()
        AsyncpgMetricsInstrumentor().instrument()
        RedisMetricsInstrumentor().instrument()

    import asyncpg
    import redis.asyncio as aioredis
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    state: dict[str, Any] = {}

    async def item(request: Any) -> JSONResponse:
        item_id = int(request.path_params["item_id"])
        async with state["pool"].acquire() as conn:
            row = await conn.fetchrow("SELECT id, name, price, category FROM items WHERE id = $1", item_id)
            related = await conn.fetch(
                "SELECT id, name FROM items WHERE category = $1 ORDER BY id LIMIT 5", row["category"]
            )
            in_category = await conn.fetchval(
                "SELECT count(*) FROM items WHERE category = $1", row["category"]
            )
        cached = await state["redis"].get(f"item:{item_id}:badge")
        views = await state["redis"].incr(f"item:{item_id}:views")
        return JSONResponse(
            {
                "id": row["id"],
                "name": row["name"],
                "price": float(row["price"]),
                "related": [r["id"] for r in related],
                "in_category": in_category,
                "badge": cached.decode() if cached else None,
                "views": views,
            }
        )

    async def bench_info(request: Any) -> JSONResponse:
        # lets the driver check that the variant really instruments (spans seen, /metrics port);
        # covet_otel is imported only where it is already loaded, or bare's RSS would include it
        port = None
        if variant.startswith("covet"):
            from covet_otel.configuration import current_pipeline

            pipeline = current_pipeline()
            port = pipeline.prometheus_address[1] if pipeline and pipeline.prometheus_address else None
        return JSONResponse(
            {"spans": spans.count if spans is not None else 0, "metrics_port": port, "recorded": recorded()}
        )

    def recorded() -> float:
        """Requests to the reference route counted by a peer's HTTP metrics."""
        if variant == "instrumentator":
            from prometheus_client import REGISTRY

            return sum(
                s.value
                for metric in REGISTRY.collect()
                for s in metric.samples
                if s.name == "http_requests_total" and s.labels.get("handler") == "/items/{item_id}"
            )
        if variant.startswith("upstream") and spans is not None:
            data = spans.metric_reader.get_metrics_data()
            return sum(
                point.count
                for rm in (data.resource_metrics if data else ())
                for sm in rm.scope_metrics
                for metric in sm.metrics
                if metric.name in ("http.server.duration", "http.server.request.duration")
                for point in metric.data.data_points
                if point.attributes.get("http.route", point.attributes.get("http.target"))
                == "/items/{item_id}"
            )
        return 0.0

    async def startup() -> None:
        state["pool"] = await asyncpg.create_pool(dsn, min_size=CONNECTIONS, max_size=CONNECTIONS)
        state["redis"] = aioredis.from_url(redis_url, max_connections=CONNECTIONS)

    async def shutdown() -> None:
        await state["pool"].close()
        await state["redis"].aclose()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        await startup()
        yield
        await shutdown()

    app: Any = Starlette(
        routes=[Route("/items/{item_id}", item), Route("/_bench", bench_info)], lifespan=lifespan
    )
    if variant == "instrumentator":
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator().instrument(app)  # its default metrics; /_bench reads them
    if spans is not None:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.metrics import NoOpMeterProvider

        # covet+spans: covet records the HTTP metrics, so the upstream middleware only traces
        meter_provider = spans.meter_provider if variant.startswith("upstream") else NoOpMeterProvider()
        app = OpenTelemetryMiddleware(
            app, tracer_provider=spans.tracer_provider, meter_provider=meter_provider
        )
    return app


@dataclass
class _Spans:
    tracer_provider: Any
    meter_provider: Any
    metric_reader: Any
    count: int = 0


def _setup_upstream(recording: bool) -> _Spans:
    """Upstream instrumentors; with `recording` off they run on a no-op tracer provider (spans off)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import NoOpTracerProvider

    class CountingExporter(SpanExporter):
        def export(self, batch: Any) -> SpanExportResult:
            spans.count += len(batch)
            return SpanExportResult.SUCCESS

    tracer_provider: Any = NoOpTracerProvider()
    if recording:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(CountingExporter()))
    reader = InMemoryMetricReader()
    spans = _Spans(tracer_provider, MeterProvider(metric_readers=[reader]), reader)
    AsyncPGInstrumentor().instrument(tracer_provider=tracer_provider)
    RedisInstrumentor().instrument(tracer_provider=tracer_provider)
    return spans


def serve(variant: str, port: int, dsn: str, redis_url: str) -> None:
    import uvicorn

    _pin(SERVER_CPU)
    app = build_app(variant, dsn, redis_url)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ------------------------------------------------------------------------------------- the servers
def _pin(index: int) -> None:
    """Pin this process to the index-th CPU it may use, when it may use two (not on a 1-CPU runner)."""
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            os.sched_setaffinity(0, {cpus[index]})


@dataclass
class Backends:
    """PostgreSQL with an `items` table and Redis with a few keys, pinned with the load generator."""

    postgres: Any = None
    redis: Any = None

    def start(self) -> Backends:
        from harness import PostgreSQL, Redis

        affinity = os.sched_getaffinity(0)
        _pin(CLIENT_CPU)  # the servers' processes inherit this process's CPU
        try:
            self.postgres = PostgreSQL().start()
            self.redis = Redis().start()
        finally:
            os.sched_setaffinity(0, affinity)
        self.postgres.psql(
            "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), category int);"
            f"INSERT INTO items SELECT i, 'item ' || i, i * 1.25, i % 20 FROM generate_series(1, {ITEMS}) i;"
            "CREATE INDEX ON items (category); ANALYZE items;"
        )
        client = self.redis.client()
        client.set("item:42:badge", "bestseller")
        client.close()
        return self

    def cleanup(self) -> None:
        for server in (self.redis, self.postgres):
            if server is not None:
                server.cleanup()


@dataclass
class AppServer:
    variant: str
    port: int
    process: subprocess.Popen
    stats: dict[str, list[float]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def rss_bytes(self) -> int:
        return psutil.Process(self.process.pid).memory_info().rss

    def info(self) -> dict[str, Any]:
        return httpx.get(self.url + "/_bench", timeout=10).json()


@contextlib.contextmanager
def app_servers(variants: tuple[str, ...], backends: Backends) -> Iterator[dict[str, AppServer]]:
    """Start one uvicorn process per variant and wait until each answers the reference request."""
    from harness import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COVET_"))}
    servers: dict[str, AppServer] = {}
    try:
        for variant in variants:
            port = free_port()
            cmd = [sys.executable, __file__, "--serve", variant, "--port", str(port),
                   "--dsn", backends.postgres.dsn, "--redis-url", backends.redis.url]  # fmt: skip
            servers[variant] = AppServer(variant, port, subprocess.Popen(cmd, env=env))
        for server in servers.values():
            _wait_ready(server)
        yield servers
    finally:
        for server in servers.values():
            server.process.terminate()
        for server in servers.values():
            try:
                server.process.wait(10)
            except subprocess.TimeoutExpired:
                server.process.kill()


def _wait_ready(server: AppServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.variant} server exited with {server.process.returncode}")
        try:
            if httpx.get(server.url + PATH, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.variant} server did not answer within {timeout} s")
        time.sleep(0.2)


# ----------------------------------------------------------------------------------------- the load
@dataclass
class Run:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_per_request_us: float


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        sys.exit("wrk not found: install it with scripts/install-tools.sh debian (or apt-get install wrk)")
    return found


def load(server: AppServer, seconds: float, connections: int = CONNECTIONS) -> Run:
    """Drive the reference request with wrk for `seconds`; fails on any non-2xx response."""
    cpu_before = server.cpu_seconds()
    proc = subprocess.run(
        [wrk_binary(), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
         server.url + PATH],
        capture_output=True, text=True, check=True, preexec_fn=lambda: _pin(CLIENT_CPU),
    )  # fmt: skip
    cpu = server.cpu_seconds() - cpu_before
    out = proc.stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"{server.variant}: wrk saw errors:\n{out}")
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if done is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests = int(done.group(1))
    elapsed = float(done.group(2)) * (1e-3 if done.group(3) == "ms" else 1.0)
    return Run(
        requests=requests,
        seconds=elapsed,
        rps=requests / elapsed,
        p50_ms=_percentile(out, "50%"),
        p99_ms=_percentile(out, "99%"),
        cpu_per_request_us=cpu / requests * 1e6,
    )


def _percentile(out: str, which: str) -> float:
    found = re.search(rf"^\s*{which}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no {which} latency in wrk output:\n{out}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def check_instrumented(servers: dict[str, AppServer]) -> list[str]:
    """Evidence that each variant records what it claims (or an exception when it does not)."""
    notes = []
    for variant, server in servers.items():
        info = server.info()
        if variant in ("upstream-metrics", "upstream", "instrumentator"):
            if info["recorded"] <= 0:
                raise RuntimeError(f"{variant}: its HTTP metrics counted no request")
            notes.append(f"{variant}: its HTTP metrics count {info['recorded']:.0f} requests")
        if variant == "upstream-metrics" and info["spans"]:
            raise RuntimeError("upstream-metrics: spans were exported with spans off")
        if "spans" in variant or variant == "upstream":
            if info["spans"] <= 0:
                time.sleep(6)  # the batch processor exports every 5 s
                info = server.info()
            if info["spans"] <= 0:
                raise RuntimeError(f"{variant}: no spans were exported")
            notes.append(f"{variant}: {info['spans']} spans exported")
        if variant.startswith("covet"):
            text = httpx.get(f"http://127.0.0.1:{info['metrics_port']}/metrics", timeout=10).text
            found = re.search(
                r'^covet_http_requests_total\{[^}]*route="/items/\{item_id\}"[^}]*\} (\S+)', text, re.M
            )
            queries = re.search(r"^covet_db_query_duration_seconds_count\{[^}]*\} (\S+)", text, re.M)
            redis_ops = re.search(r"^covet_cache_operation_duration_seconds_count\{[^}]*\} (\S+)", text, re.M)
            if not (found and queries and redis_ops):
                raise RuntimeError(f"{variant}: HTTP, database or cache series missing from /metrics")
            notes.append(f"{variant}: /metrics counts {float(found.group(1)):.0f} requests")
    return notes


# ----------------------------------------------------------------------------------------- the run
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round (smoke test)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float, help="seconds of load per variant per round")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.dsn, args.redis_url)
        return
    rounds = args.rounds or (1 if args.quick else 9)
    duration = args.duration or (1 if args.quick else 8)
    wrk_binary()
    backends = Backends().start()
    try:
        with app_servers(VARIANTS, backends) as servers:
            for server in servers.values():  # warm-up: statement caches, code paths, connections
                load(server, min(duration, 2))
            runs: dict[str, list[Run]] = {v: [] for v in VARIANTS}
            for round_no in range(rounds):
                order = (
                    VARIANTS if round_no % 2 == 0 else VARIANTS[::-1]
                )  # ABCD DCBA: no variant always first
                for variant in order:
                    runs[variant].append(load(servers[variant], duration))
            notes = check_instrumented(servers)
            attribution = None if args.quick else profile_covet(servers["covet"], duration * 3)
    finally:
        backends.cleanup()
    print(report(runs, rounds, duration, notes))
    if attribution:
        print("\n" + attribution)


# Frames that a covet-otel wrapper calls into: time below them is the wrapped library's, not ours.
_WRAPPED = ("asyncpg/", "redis/", "starlette/", "uvicorn/", "h11/", "asyncio/")
_IDLE = ("select (selectors.py", "EpollSelector.select")


def profile_covet(server: AppServer, seconds: float) -> str | None:
    """Sample the covet server under load with py-spy; the share of its busy CPU spent in
    covet-otel's own code (frames below a covet_otel frame that are not the wrapped call), by
    function. None when py-spy is not installed (pip install py-spy)."""
    spy = shutil.which("py-spy")
    if spy is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stacks.txt"
        cmd = [spy, "record", "-p", str(server.process.pid), "-r", "400", "-f", "raw", "-o", str(out),
               "-d", str(round(seconds)), "--nonblocking"]  # fmt: skip
        sampler = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run = load(server, seconds)
        sampler.wait(timeout=seconds + 60)
        if not out.exists():
            return "py-spy attribution: py-spy could not sample the server (ptrace not permitted?)"
        busy, own = 0, Counter()
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            if any(marker in frames[-1] for marker in _IDLE):
                continue
            busy += int(count)
            ours = [i for i, frame in enumerate(frames) if "covet_otel/" in frame]
            if ours and not any(lib in "".join(frames[ours[-1] + 1 : ours[-1] + 2]) for lib in _WRAPPED):
                name, _, where = frames[ours[-1]].partition(" (")
                own[f"{name} ({where.split(':')[0].removeprefix('covet_otel/')})"] += int(count)
    if not busy:
        return None
    total = sum(own.values())
    per_request = run.cpu_per_request_us
    rows = [("covet-otel code (py-spy samples of the covet server under load)", "share of busy CPU",
             "µs per request")]  # fmt: skip
    for name, count in own.most_common(12):
        rows.append((name, f"{count / busy:.1%}", f"{count / busy * per_request:.1f}"))
    rows.append(
        ("**all covet-otel code**", f"**{total / busy:.1%}**", f"**{total / busy * per_request:.1f}**")
    )
    return (
        f"Where the covet variant's added CPU goes: {busy} busy samples over {seconds:g} s of load "
        f"({run.cpu_per_request_us:.0f} µs server CPU per request in this run)\n\n" + table(rows)
    )


def _paired(runs: dict[str, list[Run]], variant: str, field: str) -> float:
    """Median over rounds of variant / bare within the round: bare and every variant run minutes
    apart at most, so the ratio cancels the drift that medians over the whole session keep."""
    return statistics.median(
        getattr(r, field) / getattr(b, field) for r, b in zip(runs[variant], runs["bare"])
    )


def report(runs: dict[str, list[Run]], rounds: int, duration: float, notes: list[str]) -> str:
    med = {
        v: {k: statistics.median(getattr(r, k) for r in rs) for k in Run.__annotations__}
        for v, rs in runs.items()
    }
    rows = [("variant", "measures", "throughput (req/s)", "vs bare", "p50", "p99", "server CPU per request",
             "CPU vs bare", "CPU vs upstream")]  # fmt: skip
    for variant, m in med.items():
        cpu_vs_upstream = m["cpu_per_request_us"] / med["upstream"]["cpu_per_request_us"]
        rows.append(
            (
                variant,
                MEASURES[variant],
                f"{m['rps']:.0f}",
                f"{_paired(runs, variant, 'rps'):.3f}",
                f"{m['p50_ms']:.2f} ms",
                f"{m['p99_ms']:.2f} ms",
                f"{m['cpu_per_request_us']:.0f} µs",
                f"{_paired(runs, variant, 'cpu_per_request_us'):.3f}",
                f"{cpu_vs_upstream:.3f}",
            )
        )
    throughput_ratio = _paired(runs, "covet", "rps")
    capacity = 1 / _paired(runs, "covet", "cpu_per_request_us")  # the throughput ratio when CPU-bound
    verdict = "met" if throughput_ratio >= 0.95 else f"missed by {0.95 - throughput_ratio:.3f}"
    lines = [
        f"{rounds} interleaved rounds x {duration:g} s per variant, wrk -t1 -c{CONNECTIONS}; absolute "
        f"figures are medians over rounds, *vs bare* columns medians of the per-round ratios; "
        f"{_machine_note()}",
        "",
        table(rows),
        "",
        f"Budget: reference endpoint, covet metrics-only throughput / bare: {throughput_ratio:.3f} "
        f"against >= 0.95 -> {verdict}",
        f"CPU-bound capacity (bare server CPU / covet server CPU per request): {capacity:.3f}.",
        "Per-round throughput (req/s): "
        + "; ".join(f"{v} " + ", ".join(f"{r.rps:.0f}" for r in rs) for v, rs in runs.items()),
        "Per-round server CPU per request (µs): "
        + "; ".join(f"{v} " + ", ".join(f"{r.cpu_per_request_us:.0f}" for r in rs) for v, rs in runs.items()),
        "Checks: " + "; ".join(notes),
    ]
    return "\n".join(lines)


def _machine_note() -> str:
    load1, load5, _ = os.getloadavg()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load1:.2f} / {load5:.2f} "
        f"on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
