"""CPU cost of covet-otel's asyncpg metrics per statement, against bare asyncpg and upstream spans.

    python benchmarks/database.py [--quick] [--profile]

Starts a local PostgreSQL (tests/harness), then times tight loops of `fetchval('SELECT 1')` on a
connection (and `pool.fetchval` through a pool: acquire + statement + release) in one process with
the instrumentation switched between rounds: bare, covet metrics only, upstream AsyncPGInstrumentor
spans (SDK tracer, null exporter), and both. Figures are whole-process CPU (`time.process_time`,
all threads) per operation, median of 5 rounds after a warm-up round; within each round the
variants run in interleaved blocks so that load from elsewhere hits them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
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

import asyncpg  # noqa: E402
from harness import PostgreSQL  # noqa: E402
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

from covet_otel.instrumentation.asyncpg import AsyncpgMetricsInstrumentor  # noqa: E402

ROUNDS = 5
BUDGET_US = 5.0


class NullExporter(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


_tracer_provider = TracerProvider()
_tracer_provider.add_span_processor(SimpleSpanProcessor(NullExporter()))


def _set(covet: bool, upstream: bool) -> None:
    covet_on = AsyncpgMetricsInstrumentor().is_instrumented_by_opentelemetry
    upstream_on = AsyncPGInstrumentor().is_instrumented_by_opentelemetry
    if covet_on and not covet:
        AsyncpgMetricsInstrumentor().uninstrument()
    if upstream_on and not upstream:
        AsyncPGInstrumentor().uninstrument()
    if upstream and not upstream_on:
        AsyncPGInstrumentor().instrument(tracer_provider=_tracer_provider)
    if covet and not covet_on:
        AsyncpgMetricsInstrumentor().instrument()


VARIANTS: dict[str, tuple[bool, bool]] = {
    "bare": (False, False),
    "covet metrics": (True, False),
    "upstream spans": (False, True),
    "both": (True, True),
}


BLOCKS = 10


async def _loop(call: Callable, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        await call("SELECT 1")
    return time.process_time() - start


async def measure(call: Callable, n: int) -> dict[str, list[float]]:
    """Per variant, the CPU µs per operation of each of ROUNDS rounds (the warm-up round dropped).

    Each round runs every variant in BLOCKS interleaved blocks of n / BLOCKS operations: on a busy
    machine, load that comes and goes then lands on all variants alike instead of on one.
    """
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    block = max(1, n // BLOCKS)
    for round_no in range(ROUNDS + 1):
        spent = dict.fromkeys(VARIANTS, 0.0)
        for _ in range(BLOCKS):
            for name, (covet, upstream) in VARIANTS.items():
                _set(covet, upstream)
                spent[name] += await _loop(call, block)
        if round_no:  # round 0 warms up caches, the statement cache and the wrappers
            for name in VARIANTS:
                samples[name].append(spent[name] / (block * BLOCKS) * 1e6)
    _set(False, False)
    return samples


def report(title: str, samples: dict[str, list[float]]) -> float:
    """Print the variants' medians; return what covet metrics add over bare (µs)."""
    figures = {name: statistics.median(values) for name, values in samples.items()}
    bare = figures["bare"]
    print(f"\n{title}: CPU µs per operation (median of {ROUNDS} rounds)")
    for name, value in figures.items():
        added = "" if name == "bare" else f"  added {value - bare:+6.2f} µs  ratio {value / bare:.3f}"
        rounds = ", ".join(f"{v:.1f}" for v in samples[name])
        print(f"  {name:<15} {value:8.2f}{added}  rounds: {rounds}")
    return figures["covet metrics"] - bare


def budget_line(what: str, added: float) -> str:
    verdict = "met" if added <= BUDGET_US else f"missed by {added - BUDGET_US:.1f} µs"
    return f"Budget: {what}: {added:+.2f} µs against {BUDGET_US:g} µs -> {verdict}"


async def profile(target: asyncpg.Connection | asyncpg.Pool, n: int) -> None:
    _set(True, False)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        await target.fetchval("SELECT 1")
    profiler.disable()
    _set(False, False)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


async def main(quick: bool, do_profile: str | None) -> None:
    n = 2000 if quick else 20000
    server = PostgreSQL()
    server.start()
    try:
        conn = await asyncpg.connect(server.dsn)
        pool = await asyncpg.create_pool(server.dsn, min_size=1, max_size=1)
        try:
            if do_profile:
                await profile(pool if do_profile == "pool" else conn, n)
                return
            # looked up on every call: a bound method taken once would bypass the class-level wrappers
            added = report(
                f"connection.fetchval('SELECT 1'), n={n}", await measure(lambda q: conn.fetchval(q), n)
            )
            pool_added = report(
                f"pool.fetchval('SELECT 1') (acquire + query + release), n={n}",
                await measure(lambda q: pool.fetchval(q), n),
            )
            print()
            print(budget_line("database: asyncpg fetchval('SELECT 1') on a connection, metrics added", added))
            print(
                budget_line(
                    "database: pool.fetchval (acquire + statement + release), metrics added", pool_added
                )
            )
        finally:
            await pool.close()
            await conn.close()
    finally:
        server.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer operations per round (noisier)")
    parser.add_argument(
        "--profile", choices=("connection", "pool"), help="cProfile the instrumented loop instead"
    )
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.profile))
