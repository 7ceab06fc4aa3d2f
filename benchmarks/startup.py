"""Start-up overhead: `opentelemetry-instrument python -c pass` with covet-otel vs the upstream
opentelemetry-distro (budget: covet-otel adds at most 150 ms). Each variant gets its own virtual
environment under .benchmarks/ (created on first run), because two distros in one environment
would compete for the launcher.

    python benchmarks/startup.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))
from _util import table

REPO = Path(__file__).resolve().parent.parent
VENVS = REPO / ".benchmarks" / "venvs"
CONSTRAINTS = REPO / "tools" / "python-constraints.txt"

VARIANTS = {
    "upstream": ["opentelemetry-distro==0.66b1", "opentelemetry-exporter-otlp-proto-http"],
    "covet": [str(REPO)],
    "covet+libs": [f"{REPO}[demo]"],  # asyncpg, redis, starlette present: the instrumentors load
}


def venv(name: str) -> Path:
    path = VENVS / name
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "-c", str(CONSTRAINTS), *VARIANTS[name]],
            check=True,
        )  # fmt: skip
    if name != "upstream":  # pick up the working tree's code
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
             "--force-reinstall", str(REPO)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return path


def measure(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (user+system of the child) of `cmd`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COVET_"))}
    env["OTEL_EXPORTER_PROMETHEUS_PORT"] = "0"  # any free port: runs must not collide
    walls, cpus = [], []
    for _ in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        # cwd outside the repo: its covet_otel.egg-info would leak entry points into every venv
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, cwd="/")
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return statistics.median(walls[1:]), statistics.median(cpus[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = 3 if args.quick else 15
    results = {}
    bare_python = venv("upstream") / "bin" / "python"
    results["bare python -c pass"] = measure([str(bare_python), "-c", "pass"], runs)
    for name in VARIANTS:
        path = venv(name)
        results[f"{name}: opentelemetry-instrument python -c pass"] = measure(
            [str(path / "bin" / "opentelemetry-instrument"), str(path / "bin" / "python"), "-c", "pass"], runs
        )
    upstream = results["upstream: opentelemetry-instrument python -c pass"]
    rows = [("command", "CPU (median)", "CPU vs upstream distro", "wall (median)")]
    for label, (wall, cpu) in results.items():
        rows.append(
            (label, f"{cpu * 1e3:.0f} ms", f"{(cpu - upstream[1]) * 1e3:+.0f} ms", f"{wall * 1e3:.0f} ms")
        )
    print(table(rows))


if __name__ == "__main__":
    main()
