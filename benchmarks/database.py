"""CPU cost of covet-otel's asyncpg metrics per statement, against bare asyncpg and upstream spans.

    python benchmarks/database.py [--quick] [--stub-io] [--profile connection|pool]

Starts a local PostgreSQL (tests/harness), then times tight loops of `fetchval('SELECT 1')` on a
connection (and `pool.fetchval` through a pool: acquire + statement + release) in one process with
the instrumentation switched between rounds: bare, covet metrics only, upstream AsyncPGInstrumentor
spans (SDK tracer, null exporter), and both. Figures are whole-process CPU (`time.process_time`,
all threads) per operation, median of 5 rounds after a warm-up round; within each round the
variants run in interleaved blocks so that load from elsewhere hits them alike. `--stub-io` replaces
the server round trip by a stub, leaving only asyncpg's and the instrumentation's own CPU.
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
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# the script's folder goes last: a script there named like a stdlib module must not shadow it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
sys.path.append(str(REPO / "benchmarks"))  # after the standard library
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402
from _util import null_tracer_provider  # noqa: E402
from harness import PostgreSQL  # noqa: E402
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: E402

from covet_otel.instrumentation.asyncpg import AsyncpgMetricsInstrumentor  # noqa: E402

ROUNDS = 5
BUDGET_US = 5.0


_tracer_provider = null_tracer_provider()


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


Samples = dict[str, list[list[float]]]  # variant -> rounds -> CPU µs per operation of each block


async def measure(call: Callable, n: int) -> Samples:
    """Each round runs every variant in BLOCKS interleaved blocks of n / BLOCKS operations (the
    warm-up round is dropped): load that comes and goes on a busy machine lands on all variants
    alike, and each covet block can be compared with the bare block run just before it."""
    samples: Samples = {name: [] for name in VARIANTS}
    block = max(1, n // BLOCKS)
    for round_no in range(ROUNDS + 1):
        spent: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(BLOCKS):
            for name, (covet, upstream) in VARIANTS.items():
                _set(covet, upstream)
                spent[name].append(await _loop(call, block) / block * 1e6)
        if round_no:  # round 0 warms up caches, the statement cache and the wrappers
            for name in VARIANTS:
                samples[name].append(spent[name])
    _set(False, False)
    return samples


def report(title: str, samples: Samples) -> float:
    """Print each variant's median over rounds and what it adds to bare; return covet's addition.

    "added" is the median, over all blocks, of the difference between a variant's block and the
    bare block of the same round and position: pairs taken seconds apart, so a load change during
    the run cancels out (the difference of the two medians would not).
    """
    rounds = {name: [statistics.fmean(r) for r in per_round] for name, per_round in samples.items()}
    figures = {name: statistics.median(values) for name, values in rounds.items()}
    bare_blocks = [b for r in samples["bare"] for b in r]
    print(f"\n{title}: CPU µs per operation (median of {ROUNDS} rounds)")
    added_by: dict[str, float] = {}
    for name, value in figures.items():
        added = ""
        if name != "bare":
            blocks = [b for r in samples[name] for b in r]
            added_by[name] = statistics.median(v - b for v, b in zip(blocks, bare_blocks))
            added = f"  added {added_by[name]:+6.2f} µs  ratio {value / figures['bare']:.3f}"
        shown = ", ".join(f"{v:.1f}" for v in rounds[name])
        print(f"  {name:<15} {value:8.2f}{added}  rounds: {shown}")
    return added_by["covet metrics"]


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


def stub_io() -> None:
    """Replace the statement round trip (`Connection._execute`, which neither instrumentor wraps)
    and the pool's reset query by no-ops: what is left is asyncpg's and the instrumentation's CPU,
    without the network, the server and their noise."""

    async def execute(self: Any, query: str, args: Any, limit: int, timeout: Any, **kwargs: Any) -> list:
        return [(1,)]

    asyncpg.connection.Connection._execute = execute
    asyncpg.connection.Connection.get_reset_query = lambda self: ""


async def main(quick: bool, do_profile: str | None, stubbed: bool) -> None:
    n = 2000 if quick else 20000
    server = PostgreSQL()
    server.start()
    try:
        conn = await asyncpg.connect(server.dsn)
        pool = await asyncpg.create_pool(server.dsn, min_size=1, max_size=1)
        try:
            if stubbed:
                stub_io()
                print("statement round trip and pool reset stubbed out (--stub-io): instrumentation CPU only")
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
            if stubbed:  # the budget is for real statements; these figures say where the CPU goes
                print(
                    f"Stubbed: covet adds {added:+.2f} µs per statement, {pool_added:+.2f} µs per pool call"
                )
            else:
                print(
                    budget_line(
                        "database: asyncpg fetchval('SELECT 1') on a connection, metrics added", added
                    )
                )
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
    parser.add_argument(
        "--stub-io", action="store_true", help="no server round trips: the instrumentation's CPU alone"
    )
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.profile, args.stub_io))
