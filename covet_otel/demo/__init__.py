"""`covet-otel demo`: an instrumented ASGI shop, traffic against it, and what it produced."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections import Counter
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8000, help="HTTP port of the demo app (default 8000)")
    parser.add_argument(
        "--metrics-port", type=int, default=9464, help="port of the embedded /metrics endpoint (default 9464)"
    )
    parser.add_argument("--database-url", help="PostgreSQL URL; default: start a local server if installed")
    parser.add_argument("--redis-url", help="Redis URL; default: start a local server if installed")
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds of traffic; 0 serves until Ctrl-C (default 30)"
    )
    parser.add_argument("--rps", type=float, default=50.0, help="requests per second to send (default 50)")
    parser.add_argument(
        "--no-local-servers", action="store_true", help="never start local PostgreSQL/Redis servers"
    )


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 130


def _say(text: str) -> None:
    print(text, flush=True)


def _instrument() -> list[str]:
    """Turn on every covet instrumentor that is importable (the launcher would do the same)."""
    enabled = []
    candidates = [
        ("asyncpg", "covet_otel.instrumentation.asyncpg", "AsyncpgMetricsInstrumentor"),
        ("redis", "covet_otel.instrumentation.redis", "RedisMetricsInstrumentor"),
        ("starlette", "covet_otel.instrumentation.http.frameworks", "StarletteMetricsInstrumentor"),
    ]
    import importlib

    for label, module_name, class_name in candidates:
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            continue
        instrumentor = cls()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
        enabled.append(label)
    return enabled


async def _main(args: argparse.Namespace) -> int:
    import covet_otel
    from covet_otel.configuration import current_pipeline

    from . import servers
    from .app import Backends, build_app

    pipeline = current_pipeline()
    if pipeline is None:
        env = dict(os.environ)
        env.setdefault("OTEL_EXPORTER_PROMETHEUS_PORT", str(args.metrics_port))
        pipeline = covet_otel.configure(environ=env)
    if pipeline is None:
        _say("covet-otel is disabled (COVET_ENABLED=false): nothing to show.")
        return 1
    instrumented = _instrument()

    started: list[servers.LocalServer] = []

    def local(url: str | None, start: Any, what: str, hint: str) -> str | None:
        if url is not None or args.no_local_servers:
            return url
        server = start()
        if server is None:
            _say(f"skipped {what}: {hint}")
            return None
        started.append(server)
        _say(f"started a local {what} at {server.url}")
        return server.url

    database_url = local(
        args.database_url, servers.start_postgres, "PostgreSQL",
        "no server binaries found (install postgresql or pass --database-url)",
    )  # fmt: skip
    redis_url = local(
        args.redis_url, servers.start_redis, "Redis",
        "redis-server not found (install redis-server or pass --redis-url)",
    )  # fmt: skip

    if database_url is None or redis_url is None:
        _say("without a database and Redis, /items answers 503 (pass --database-url and --redis-url)")

    import uvicorn

    app = build_app(Backends(database_url, redis_url))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="critical", lifespan="on")
    )
    serve = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serve.done():
                _say(f"the demo app could not start on port {args.port}")
                return 1
            await asyncio.sleep(0.05)
        base = f"http://127.0.0.1:{args.port}"
        metrics_url = (
            f"http://{pipeline.prometheus_address[0]}:{pipeline.prometheus_address[1]}/metrics"
            if pipeline.prometheus_address
            else None
        )
        _say(f"demo app:      {base}/  (items: {base}/items/1)")
        _say(f"health:        {base}/health  {base}/health/ready")
        _say(f"metrics:       {metrics_url or 'exported over ' + ', '.join(pipeline.exporters)}")
        _say(f"instrumented:  {', '.join(instrumented) or 'system metrics only'}")
        sent = await _drive(base, args.duration, args.rps)
        _say("")
        _say(_summary(metrics_url, sent))
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serve, 10)
        for srv in started:
            srv.stop()
    return 0


async def _drive(base: str, duration: float, rps: float) -> Counter:
    """Send the demo's traffic mix at `rps` for `duration` seconds, showing progress."""
    import httpx

    from .app import random_path

    statuses: Counter = Counter()
    tty = sys.stdout.isatty()
    interval = 1.0 / rps if rps > 0 else 0.0
    start = time.monotonic()
    last_line = 0.0
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while duration <= 0 or time.monotonic() - start < duration:
            method, path, headers = random_path()
            try:
                response = await client.request(method, path, headers=headers)
                statuses[response.status_code] += 1
            except httpx.HTTPError:
                statuses["error"] += 1
            elapsed = time.monotonic() - start
            if elapsed - last_line >= (0.2 if tty else 5.0):
                last_line = elapsed
                total = sum(statuses.values())
                progress = f"[{elapsed:5.1f}s / {duration:g}s] {total} requests " + " ".join(
                    f"{code}:{n}" for code, n in sorted(statuses.items(), key=str)
                )
                print(("\r" + progress) if tty else progress, end="" if tty else "\n", flush=True)
            await asyncio.sleep(interval)
    return statuses


def _summary(metrics_url: str | None, sent: Counter) -> str:
    lines = [f"sent {sum(sent.values())} requests: {dict(sorted(sent.items(), key=str))}"]
    if metrics_url is None:
        return "\n".join(lines)
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from covet_otel.catalogue import BY_NAME

    families = text_string_to_metric_families(httpx.get(metrics_url, timeout=10).text)
    per_group: dict[str, list[tuple[str, int]]] = {}
    for family in families:
        name = family.name
        definition = BY_NAME.get(name) or BY_NAME.get(name + "_total")
        if definition is None:
            continue
        series = {tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")) for s in family.samples}
        per_group.setdefault(definition.group, []).append((definition.name, len(series)))
    lines.append(f"covet_* series at {metrics_url}:")
    for group, entries in sorted(per_group.items()):
        lines.append(f"  {group}: " + ", ".join(f"{name} ({n})" for name, n in sorted(entries)))
    return "\n".join(lines)


__all__: list[Any] = ["add_arguments", "run"]
