"""Every benchmark runs in --quick mode and prints the figures that docs/performance.md is built from.

Smoke only: no timing is asserted (benchmarks are never pass/fail on speed). What is asserted is
the contract with benchmarks/run_all.py: each script exits 0, prints its table, and every budget
that run_all reads for the summary is found in its output.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
from harness import tools

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import run_all  # noqa: E402

# what each script's output must contain besides its budgets
EXPECTED = {
    # the peers too, each with what it measures
    "reference_endpoint": r"^\| upstream-metrics \| HTTP metrics \| \d+ \|(.|\n)*"
    r"^\| instrumentator \| HTTP metrics \| \d+ \|(.|\n)*^\| covet\+spans \| [^|]+ \| \d+ \|",
    "render": r"^\| 10,0\d\d \|",
    "memory": r"^\| covet \| [\d.]+ MB \|",
    "cardinality": r"^\| 2,000 \| \d+ / \d+ \|",
    "database": r"^\s+covet metrics\s+[\d.]+\s+added",
    "cache": r"^\s+covet metrics\s+[\d.]+\s+added",
    "http": r"^\s+covet\s+[\d.]+\s+rounds:",
    "startup": r"^\| covet\+libs: opentelemetry-instrument",
    "system_metrics": r"^\| system group",
    "health": r"^\| ready cached \| [\d.]+ \|",
    "collector": r"^steady: ",
}
NEEDS = {"reference_endpoint": "wrk", "memory": "wrk"}
SLOW = {"collector", "startup"}  # a minute or more even in --quick mode (collector run; venvs on first use)


def test_every_benchmark_is_covered() -> None:
    scripts = {p.name for p in (REPO / "benchmarks").glob("*.py") if not p.name.startswith("_")}
    assert scripts - {"run_all.py"} == {b.script for b in run_all.BENCHES}
    assert set(EXPECTED) == {b.name for b in run_all.BENCHES}


@pytest.mark.parametrize(
    "bench",
    [pytest.param(b, id=b.name, marks=[pytest.mark.slow] if b.name in SLOW else []) for b in run_all.BENCHES],
)
def test_quick_run(bench: run_all.Bench) -> None:
    if bench.name in NEEDS and shutil.which(NEEDS[bench.name]) is None:
        tools.missing(NEEDS[bench.name], "scripts/install-tools.sh debian")
    if bench.name == "collector" and not (REPO / "collector" / "_build" / "otelcol-covet").exists():
        tools.missing("otelcol-covet", "collector/build.sh")
    ok, output = run_all.run(bench, quick=True, timeout=280)
    assert ok, output
    assert re.search(EXPECTED[bench.name], output, re.MULTILINE), output
    budgets = run_all.budgets(bench, output)
    assert all(b[2] != "not in the output" for b in budgets), output
    if bench.name != "collector":  # the only script without a budget
        assert budgets, output
    for _what, _limit, _measured, verdict in budgets:
        assert verdict == "met" or verdict.startswith("missed by "), budgets


def test_page_blocks_are_rewritten_in_place_and_prose_is_kept(tmp_path: Path) -> None:
    page = (
        "# Performance\n\nintro\n\n<!-- generated: summary -->\nold\n<!-- /generated: summary -->\n\n"
        "## Database\n\nhand-written prose\n\n## Cache\n\ncache prose\n"
    )
    page = run_all.put_block(page, "summary", "new summary", None)
    page = run_all.put_block(page, "database", "db figures", "Database")
    page = run_all.put_block(page, "render", "render figures", "/metrics render time")
    assert page == (
        "# Performance\n\nintro\n\n<!-- generated: summary -->\nnew summary\n<!-- /generated: summary -->\n\n"
        "## Database\n\nhand-written prose\n\n<!-- generated: database -->\ndb figures\n"
        "<!-- /generated: database -->\n\n## Cache\n\ncache prose\n\n"
        "## /metrics render time\n\n<!-- generated: render -->\nrender figures\n<!-- /generated: render -->\n"
    )
    again = run_all.put_block(page, "database", "db figures 2", "Database")
    assert again == page.replace("db figures\n", "db figures 2\n")


def test_summary_reads_every_budget() -> None:
    outputs = {
        "render": "Budget: /metrics render at 10k time series (CPU per scrape): 80.0 ms against 100 ms "
        "-> met",
        "cache": "budget: 4 µs per GET metrics-only; wrapper adds 5.20 µs (missed)",
        "http": "FastAPI: covet adds 12.5 µs (x1.2 of bare)\nStarlette: covet adds 30.0 µs (x1.5 of bare)",
    }
    rows = run_all.summary(outputs).splitlines()[2:]
    assert rows == [
        "| /metrics render at 10k time series (CPU per scrape) | 100 ms | 80.0 ms | met "
        "| [/metrics render time](#metrics-render-time) |",
        "| cache: Redis command, metrics added | 4 µs | 5.20 µs | missed by 1.20 µs | [Cache](#cache) |",
        "| HTTP: FastAPI request, metrics added | 25 µs | 12.50 µs | met | [HTTP](#http) |",
        "| HTTP: Starlette request, metrics added | 25 µs | 30.00 µs | missed by 5.00 µs | [HTTP](#http) |",
    ]
