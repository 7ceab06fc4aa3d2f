"""Resident memory (RSS) of the reference endpoint's server in each variant (budget: covet-otel adds
at most 25 MB over bare).

Starts the four servers of benchmarks/reference_endpoint.py (same app, same PostgreSQL and Redis),
reads each process's RSS after start-up and again after a stretch of wrk load, and reports the
difference to bare. The covet variant's RSS includes everything covet-otel brings into the
process: the SDK, the embedded /metrics endpoint's thread, system metrics, the instrumentors and
their series.

    python benchmarks/memory.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]

import httpx  # noqa: E402
from _util import table  # noqa: E402
from reference_endpoint import VARIANTS, Backends, app_servers, load, wrk_binary  # noqa: E402

BUDGET_MB = 25.0
MB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one second of load")
    args = parser.parse_args()
    seconds = 1 if args.quick else 10
    wrk_binary()
    backends = Backends().start()
    try:
        with app_servers(VARIANTS, backends) as servers:
            started = {v: s.rss_bytes() for v, s in servers.items()}
            requests = {}
            for variant, server in servers.items():
                requests[variant] = load(server, seconds).requests
                info = server.info()
                if info["metrics_port"]:  # a scrape, as Prometheus would do: its buffers count too
                    httpx.get(f"http://127.0.0.1:{info['metrics_port']}/metrics", timeout=30)
            loaded = {v: s.rss_bytes() for v, s in servers.items()}
    finally:
        backends.cleanup()
    verdict = ""
    rows = [
        ("variant", "RSS after start", "vs bare", "RSS after load", "vs bare", "requests served", "budget")
    ]
    for variant in VARIANTS:
        at_start = (started[variant] - started["bare"]) / MB
        added = (loaded[variant] - loaded["bare"]) / MB
        budget = ""
        if variant == "covet":
            # the larger of the two: a heap that grew under load can hide what start-up added
            worst = max(at_start, added)
            budget = "met" if worst <= BUDGET_MB else f"missed by {worst - BUDGET_MB:.1f} MB"
            verdict = (
                f"Budget: RSS added by covet-otel (the larger of after start and after load): "
                f"{worst:+.1f} MB against {BUDGET_MB:.0f} MB -> {budget}"
            )
        rows.append(
            (
                variant,
                f"{started[variant] / MB:.1f} MB",
                "—" if variant == "bare" else f"{at_start:+.1f} MB",
                f"{loaded[variant] / MB:.1f} MB",
                "—" if variant == "bare" else f"{added:+.1f} MB",
                f"{requests[variant]:,}",
                budget,
            )
        )
    load1, load5, _ = os.getloadavg()
    print(
        f"{seconds} s of wrk load per variant, then one /metrics scrape; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load1:.2f} / {load5:.2f}\n"
    )
    print(table(rows))
    print(f"\n{verdict}")


if __name__ == "__main__":
    main()
