"""Run every benchmark and rewrite the generated figures in docs/performance.md.

    python benchmarks/run_all.py            # full run (~15 min on 2 CPUs), rewrites the page
    python benchmarks/run_all.py --quick    # smoke run: every script in --quick mode, page untouched
    python benchmarks/run_all.py --only render memory   # some scripts; their blocks are rewritten

The benchmarks run one after the other, never in parallel (they measure CPU time). Each script's
output lands in the page between `<!-- generated: NAME -->` and `<!-- /generated: NAME -->`, inside
the `## ...` section of its area (appended at the section's end the first time; a missing section
gets created at the end of the page); everything outside those markers is hand-written prose and
is kept as it is. The `summary` block is the table of every budget, read from the scripts' outputs
(with `--only`, the other scripts' saved outputs), and the `machine` block says where and when the
last whole run took place (each script's output also carries its own date and load average).
Outputs are also saved under .benchmarks/results/, and `--from-saved` rebuilds the page from them
without running anything.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOC = REPO / "docs" / "performance.md"
SAVED = REPO / ".benchmarks" / "results"

Budget = tuple[str, str, str, str]  # what, limit, measured, verdict


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    heading: str  # the page section (a `## ` heading) that holds its figures
    budgets: Callable[[str], list[Budget]]  # used when the output has no standard `Budget:` line


def _find(pattern: str, text: str) -> re.Match | None:
    return re.search(pattern, text, re.MULTILINE)


def _standard(text: str) -> list[Budget]:
    """Lines `Budget: <what>: <measured> against <limit> -> <verdict>` (this suite's scripts)."""
    found = re.findall(r"^Budget: (.+): (.+?) against (.+?) -> (.+)$", text, re.MULTILINE)
    return [(what, limit, measured, _verdict(verdict)) for what, measured, limit, verdict in found]


def _verdict(text: str) -> str:
    """One wording for the summary: `met` or `missed by ...` (scripts also say within / over by)."""
    text = text.strip()
    if text.lower() in ("met", "within"):
        return "met"
    return re.sub(r"^(over|missed)( by)?", "missed by", text, flags=re.IGNORECASE).replace("by by", "by")


def _measured(what: str, limit: float, unit: str, pattern: str) -> Callable[[str], list[Budget]]:
    """A budget read from a script's own line: group `value` is the measured figure (what covet-otel
    adds, or costs), group `limit`, when present, the script's own limit."""

    def parse(text: str) -> list[Budget]:
        match = _find(pattern, text)
        if match is None:
            return [(what, f"{limit:g} {unit}", "not in the output", "see the section")]
        value = float(match.group("value"))
        bound = float(match.groupdict().get("limit") or limit)
        verdict = "met" if value <= bound else f"missed by {value - bound:.2f} {unit}"
        return [(what, f"{bound:g} {unit}", f"{value:.2f} {unit}", verdict)]

    return parse


def _each(*parsers: Callable[[str], list[Budget]]) -> Callable[[str], list[Budget]]:
    return lambda text: [budget for parse in parsers for budget in parse(text)]


_cache = _measured(
    "cache: Redis command, metrics added",
    4,
    "µs",
    r"^budget: (?P<limit>\d+) µs per GET metrics-only; wrapper adds (?P<value>-?[\d.]+) µs",
)
_http = _each(
    _measured(
        "HTTP: FastAPI request, metrics added", 25, "µs", r"^FastAPI: covet adds (?P<value>-?[\d.]+) µs"
    ),
    _measured(
        "HTTP: Starlette request, metrics added", 25, "µs", r"^Starlette: covet adds (?P<value>-?[\d.]+) µs"
    ),
)
_startup = _each(
    _measured(
        "start-up: CPU added vs the upstream distro",
        150,
        "ms",
        r"^\| covet: [^|]+\| [^|]+\| \+?(?P<value>-?\d+) ms \|",
    ),
    _measured(
        "start-up: the same with asyncpg, redis, starlette installed (the instrumentors import them)",
        150,
        "ms",
        r"^\| covet\+libs: [^|]+\| [^|]+\| \+?(?P<value>-?\d+) ms \|",
    ),
)
_system = _measured(
    "system metrics: one collection (CPU)",
    2,
    "ms",
    r"^\| system group[^|]*\| (?P<value>[\d.]+) ms \| (?P<limit>[\d.]+) ms \|",
)


BENCHES = (
    Bench("reference_endpoint", "reference_endpoint.py", "Reference endpoint", _standard),
    Bench("render", "render.py", "/metrics render time", _standard),
    Bench("memory", "memory.py", "Memory (RSS)", _standard),
    Bench("cardinality", "cardinality.py", "Cardinality", _standard),
    Bench("database", "database.py", "Database", _standard),
    Bench("cache", "cache.py", "Cache", _cache),
    Bench("http", "http_requests.py", "HTTP", _http),
    Bench("startup", "startup.py", "Start-up", _startup),
    Bench("system_metrics", "system_metrics.py", "System metrics", _system),
    Bench("health", "health.py", "Health", _standard),
    Bench("collector", "collector_load.py", "Collector", lambda _text: []),  # no budget in this issue
)


# ------------------------------------------------------------------------------------------ running
def run(bench: Bench, quick: bool, timeout: float) -> tuple[bool, str]:
    cmd = [sys.executable, str(HERE / bench.script), *(["--quick"] if quick else [])]
    started = time.monotonic()
    print(f"[run_all] {bench.name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s"
    print(
        f"[run_all] {bench.name}: {time.monotonic() - started:.0f} s, exit {proc.returncode}", file=sys.stderr
    )
    if proc.returncode != 0:
        return False, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return True, proc.stdout.strip()


# ------------------------------------------------------------------------------------------ the page
def _markers(name: str) -> tuple[str, str]:
    return f"<!-- generated: {name} -->", f"<!-- /generated: {name} -->"


def as_markdown(output: str) -> str:
    """Markdown tables stay tables; plain-text output goes in a code block."""
    if re.search(r"^\|(---\|)+$", output, re.MULTILINE):
        return output
    return f"```text\n{output}\n```"


def put_block(page: str, name: str, body: str, heading: str | None) -> str:
    """Replace the block `name`, or add it at the end of section `heading` (or of the page)."""
    begin, end = _markers(name)
    block = f"{begin}\n{body}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(page):
        return pattern.sub(lambda _: block, page, count=1)
    if heading is not None:
        found = re.search(rf"^## {re.escape(heading)}[^\n]*\n", page, re.MULTILINE | re.IGNORECASE)
        if found is None:
            return page.rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"
        following = re.search(r"^## ", page[found.end() :], re.MULTILINE)
        at = found.end() + following.start() if following else len(page)
        head, tail = page[:at].rstrip("\n"), page[at:]
        return f"{head}\n\n{block}\n" + (f"\n{tail}" if tail else "")
    return page.rstrip("\n") + f"\n\n{block}\n"


def budgets(bench: Bench, output: str) -> list[Budget]:
    """Standard `Budget:` lines when the script prints them, else its own format's parser."""
    return _standard(output) or bench.budgets(output)


def summary(outputs: dict[str, str]) -> str:
    from _util import table

    rows: list[tuple[str, ...]] = [("budget", "limit", "measured", "verdict", "section")]
    for bench in BENCHES:
        if bench.name not in outputs:
            continue
        anchor = re.sub(r"[^a-z0-9 -]", "", bench.heading.lower()).replace(" ", "-")
        for what, limit, measured, verdict in budgets(bench, outputs[bench.name]):
            rows.append((what, limit, measured, verdict, f"[{bench.heading}](#{anchor})"))
    return table(rows)


def machine(started: float, load_before: tuple[float, ...], quick: bool) -> str:
    def version(cmd: list[str]) -> str:
        try:
            return (
                subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
            )
        except (OSError, IndexError, subprocess.SubprocessError):
            return "not found"

    from importlib.metadata import version as dist_version

    cpu = "unknown CPU"
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = f"{names[0]} x {len(names)}" if names else cpu
    except OSError:
        pass
    sys.path.insert(0, str(REPO / "tests"))
    from harness import tools

    load_after = os.getloadavg()
    lines = [
        f"- run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
        f"{(time.time() - started) / 60:.0f} min, {'--quick (smoke figures)' if quick else 'full'} mode",
        f"- load average (1/5/15 min) at start {'/'.join(f'{x:.2f}' for x in load_before)}, "
        f"at end {'/'.join(f'{x:.2f}' for x in load_after)} (other work on the machine shares its CPUs)",
        f"- machine: {cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; opentelemetry-sdk {dist_version('opentelemetry-sdk')}, "
        f"opentelemetry-instrumentation {dist_version('opentelemetry-instrumentation')}; "
        f"asyncpg {dist_version('asyncpg')}, redis {dist_version('redis')}, "
        f"starlette {dist_version('starlette')}, uvicorn {dist_version('uvicorn')}",
        f"- {version([str(tools.postgres_bin_dir() / 'postgres'), '--version'])}; "
        f"{version(['redis-server', '--version'])}; {version(['wrk', '--version'])}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="every script in --quick mode; page not rewritten"
    )
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHES], help="run only these")
    parser.add_argument(
        "--doc", type=Path, help=f"page to rewrite (default {DOC.relative_to(REPO)}; with --quick: none)"
    )
    parser.add_argument(
        "--from-saved", action="store_true", help="rebuild the page from .benchmarks/results/"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per script")
    args = parser.parse_args()
    doc = args.doc or (None if args.quick else DOC)
    selected = [b for b in BENCHES if not args.only or b.name in args.only]
    started, load_before = time.time(), os.getloadavg()
    outputs: dict[str, str] = {}
    failed = []
    SAVED.mkdir(parents=True, exist_ok=True)
    for bench in selected:
        saved = SAVED / f"{bench.name}{'.quick' if args.quick else ''}.txt"
        if args.from_saved:
            if saved.exists():
                outputs[bench.name] = saved.read_text().strip()
            continue
        ok, text = run(bench, args.quick, args.timeout)
        print(f"\n## {bench.name}\n{text}\n", flush=True)
        if ok:
            outputs[bench.name] = text
            saved.write_text(text + "\n")
        else:
            failed.append(bench.name)
    if doc is not None:
        page = doc.read_text() if doc.exists() else "# Performance\n"
        for bench in selected:
            if bench.name in outputs:
                page = put_block(page, bench.name, as_markdown(outputs[bench.name]), bench.heading)
        # the summary covers every budget: scripts not run now count with their saved output
        for bench in BENCHES:
            saved = SAVED / f"{bench.name}{'.quick' if args.quick else ''}.txt"
            if bench.name not in outputs and saved.exists():
                outputs[bench.name] = saved.read_text().strip()
        page = put_block(page, "summary", summary(outputs), None)
        if not args.only and not args.from_saved:  # the run's description is a whole run's
            page = put_block(page, "machine", machine(started, load_before, args.quick), None)
        doc.write_text(page)
        print(f"[run_all] rewrote {doc}", file=sys.stderr)
    if failed:
        sys.exit(f"[run_all] failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
