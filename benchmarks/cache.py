"""CPU cost of covet-otel's Redis metrics per command, against bare redis-py and upstream spans.

    python benchmarks/cache.py [--quick] [--profile]

Starts a local Redis (tests/harness), then times tight loops of sync `GET` (a hit), `GET` of a
missing key, a 10-command pipeline and asyncio `GET`, in one process with the instrumentation
switched between rounds: bare, covet metrics only, upstream RedisInstrumentor spans (SDK tracer,
null exporter), and both. Figures are whole-process CPU (`time.process_time`, all threads) per
operation, median of 5 rounds after a warm-up round; each round is cut into 10 blocks that each run
every variant, so drift and load from other processes hit the variants alike. A last table
isolates the wrapper's own cost: the same wrapper around a stub `execute_command` that does no
I/O, so the figure is not lost in the noise of a ~30-100 µs round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# benchmarks/ holds http.py, which would shadow the standard library's http package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
import wrapt  # noqa: E402
from harness import Redis, free_port  # noqa: E402
from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

import covet_otel  # noqa: E402
from covet_otel.instrumentation import redis as covet_redis  # noqa: E402
from covet_otel.instrumentation.redis import RedisMetricsInstrumentor  # noqa: E402

ROUNDS = 5
BLOCKS = 10
BUDGET_US = 4.0


class NullExporter(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


_tracer_provider = TracerProvider()
_tracer_provider.add_span_processor(SimpleSpanProcessor(NullExporter()))

VARIANTS: dict[str, tuple[bool, bool]] = {
    "bare": (False, False),
    "covet metrics": (True, False),
    "upstream spans": (False, True),
    "both": (True, True),
}


def _set(covet: bool, upstream: bool) -> None:
    # Always from scratch, upstream first: its uninstrument() strips whichever wrapper is on top,
    # so toggling one while the other stays would leave a stale state behind.
    if RedisMetricsInstrumentor().is_instrumented_by_opentelemetry:
        RedisMetricsInstrumentor().uninstrument()
    if RedisInstrumentor().is_instrumented_by_opentelemetry:
        RedisInstrumentor().uninstrument()
    if upstream:
        RedisInstrumentor().instrument(tracer_provider=_tracer_provider)
    if covet:
        RedisMetricsInstrumentor().instrument()


def _timed(loop: Callable[[int], None], n: int) -> float:
    start = time.process_time()
    loop(n)
    return (time.process_time() - start) / n * 1e6


def measure(loop: Callable[[int], None], n: int) -> dict[str, float]:
    """Per variant, the median over rounds of CPU µs per operation. Each round is cut into blocks
    and every block runs every variant (in a rotating order), so that load from other processes
    on a shared machine lands on all variants alike rather than on whichever ran at that moment."""
    names = list(VARIANTS)
    block = max(1, n // BLOCKS)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(ROUNDS + 1):
        spent = dict.fromkeys(names, 0.0)
        for b in range(BLOCKS):
            for name in names[b % len(names) :] + names[: b % len(names)]:
                _set(*VARIANTS[name])
                spent[name] += _timed(loop, block) * block
        if round_no:  # round 0 warms up connections, series and wrappers
            for name in names:
                samples[name].append(spent[name] / (block * BLOCKS))
    _set(False, False)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, figures: dict[str, float]) -> None:
    bare = figures["bare"]
    print(f"\n{title}: CPU µs per operation (median of {ROUNDS} rounds)")
    for name, value in figures.items():
        added = "" if name == "bare" else f"  added {value - bare:+6.2f} µs  ratio {value / bare:.3f}"
        print(f"  {name:<15} {value:8.2f}{added}")


def wrapper_only(n: int) -> dict[str, float]:
    """The wrapper's own CPU per call around a stub that returns a GET reply at once."""

    def stub(*args: object, **kwargs: object) -> bytes:
        return b"value"

    def stub_miss(*args: object, **kwargs: object) -> None:
        return None

    covet_redis._active = True
    wrapped = wrapt.FunctionWrapper(stub, covet_redis._wrap_command)
    wrapped_miss = wrapt.FunctionWrapper(stub_miss, covet_redis._wrap_command)

    def bare(k: int) -> None:
        for _ in range(k):
            stub("GET", "key", keys=["key"])

    def hit(k: int) -> None:
        for _ in range(k):
            wrapped("GET", "key", keys=["key"])

    def miss(k: int) -> None:
        for _ in range(k):
            wrapped_miss("GET", "key", keys=["key"])

    def mget(k: int) -> None:
        for _ in range(k):
            wrapped("MGET", "a", "b", "c")

    out: dict[str, list[float]] = {"stub": [], "GET hit": [], "GET miss": [], "SET (no hit rule)": []}
    wrapped_set = wrapt.FunctionWrapper(stub, covet_redis._wrap_command)

    def set_(k: int) -> None:
        for _ in range(k):
            wrapped_set("SET", "key", "v")

    for round_no in range(ROUNDS + 1):
        for name, loop in (("stub", bare), ("GET hit", hit), ("GET miss", miss), ("SET (no hit rule)", set_)):
            per_op = _timed(loop, n)
            if round_no:
                out[name].append(per_op)
    covet_redis._active = False
    return {name: statistics.median(values) for name, values in out.items()}


def main(quick: bool, do_profile: bool) -> None:
    n = 2000 if quick else 20000
    # the real export pipeline in this process (embedded /metrics), as under the launcher
    env = dict(os.environ, OTEL_EXPORTER_PROMETHEUS_PORT=str(free_port()))
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    covet_otel.configure(environ=env)
    server = Redis()
    server.start()
    try:
        r = redis.Redis(host=server.host, port=server.port)
        r.set("present", "x" * 32)

        if do_profile:
            _set(True, False)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(n):
                r.get("present")
            profiler.disable()
            _set(False, False)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
            return

        def get_hit(k: int) -> None:
            for _ in range(k):
                r.get("present")

        def get_miss(k: int) -> None:
            for _ in range(k):
                r.get("absent")

        def pipeline(k: int) -> None:
            for _ in range(k):
                pipe = r.pipeline(transaction=False)
                for _ in range(10):
                    pipe.get("present")
                pipe.execute()

        ar = aioredis.Redis(host=server.host, port=server.port)
        loop = asyncio.new_event_loop()

        def aio_get(k: int) -> None:
            async def run() -> None:
                for _ in range(k):
                    await ar.get("present")

            loop.run_until_complete(run())

        report(f"sync GET (hit), n={n}", measure(get_hit, n))
        report(f"sync GET (miss), n={n}", measure(get_miss, n))
        report(f"pipeline of 10 GETs, n={n // 10}", measure(pipeline, n // 10))
        report(f"asyncio GET (hit), n={n}", measure(aio_get, n))
        loop.run_until_complete(ar.aclose())
        loop.close()
        r.close()

        stub = wrapper_only(n * 10)
        print(f"\nwrapper alone around a no-I/O stub, n={n * 10}: CPU µs per call (median of {ROUNDS})")
        for name, value in stub.items():
            added = "" if name == "stub" else f"  added {value - stub['stub']:+6.2f} µs"
            print(f"  {name:<18} {value:8.3f}{added}")
        added = stub["GET hit"] - stub["stub"]
        verdict = "within" if added <= BUDGET_US else "OVER"
        print(f"\nbudget: {BUDGET_US} µs per GET metrics-only; wrapper adds {added:.2f} µs ({verdict})")
    finally:
        server.cleanup()
        covet_otel.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer operations per round (noisier)")
    parser.add_argument("--profile", action="store_true", help="cProfile the instrumented GET loop instead")
    args = parser.parse_args()
    main(args.quick, args.profile)
