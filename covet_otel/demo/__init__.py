"""`covet-otel demo`: an instrumented ASGI shop, traffic against it, and what it produced."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import socket
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
    except KeyboardInterrupt:  # Ctrl-C before the demo's own handler was installed
        return 130


def _say(text: str) -> None:
    print(text, flush=True)


def _fail(text: str) -> None:
    print(f"covet-otel demo: {text}", file=sys.stderr, flush=True)


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


def _bind(port: int, flag: str) -> socket.socket | None:
    """The demo's listening socket, bound before anything is started; None (said once, naming
    the port and the flag) when the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        _fail(f"port {port} on 127.0.0.1 {reason}; pass {flag} with a free port (e.g. {flag} 0 for any)")
        return None
    return sock


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def _main(args: argparse.Namespace) -> int:
    """Every way out (the end of the traffic, an error, Ctrl-C, SIGTERM) stops what the demo
    started and prints the summary of what it measured so far."""
    import covet_otel
    from covet_otel.configuration import current_pipeline

    from . import servers

    servers.sweep_stale()
    listener = _bind(args.port, "--port")
    if listener is None:
        return 1
    stop = asyncio.Event()
    interrupted: list[int] = []
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signum, lambda s=signum: (interrupted.append(s), stop.set()))
    started: list[servers.LocalServer] = []
    sent: Counter = Counter()
    metrics_url: str | None = None
    try:
        pipeline = current_pipeline()
        if pipeline is None:
            env = dict(os.environ)
            if "OTEL_EXPORTER_PROMETHEUS_PORT" not in env and not _port_free(args.metrics_port):
                _fail(
                    f"port {args.metrics_port} on 127.0.0.1 is in use; pass --metrics-port with a free "
                    "port (e.g. --metrics-port 0 for any)"
                )
                return 1
            env.setdefault("OTEL_EXPORTER_PROMETHEUS_PORT", str(args.metrics_port))
            try:
                pipeline = covet_otel.configure(environ=env)
            except covet_otel.SettingsError as exc:
                _fail(str(exc))
                return 2
        if pipeline is None:
            _say("covet-otel is disabled (COVET_ENABLED=false): nothing to show.")
            return 1
        if pipeline.prometheus_address:
            metrics_url = f"http://{pipeline.prometheus_address[0]}:{pipeline.prometheus_address[1]}/metrics"
        instrumented = _instrument()
        database_url, redis_url = await _backends(args, started, stop)
        if stop.is_set():
            return _interrupted(interrupted, metrics_url, sent)
        return await _serve(
            args,
            listener,
            pipeline,
            instrumented,
            database_url,
            redis_url,
            stop,
            sent,
            metrics_url,
            interrupted,
        )
    finally:
        listener.close()
        for srv in reversed(started):
            srv.stop()


async def _backends(
    args: argparse.Namespace, started: list[Any], stop: asyncio.Event
) -> tuple[str | None, str | None]:
    from . import servers

    async def local(url: str | None, start: Any, what: str, hint: str) -> str | None:
        if url is not None or args.no_local_servers or stop.is_set():
            return url
        # in a thread: initdb takes seconds, and Ctrl-C must still be heard meanwhile
        server = await asyncio.to_thread(start)
        if server is None:
            _say(f"skipped {what}: {hint}")
            return None
        started.append(server)
        _say(f"started a local {what} at {server.url}")
        return server.url

    database_url = await local(
        args.database_url, servers.start_postgres, "PostgreSQL",
        "no server binaries found (install postgresql or pass --database-url)",
    )  # fmt: skip
    redis_url = await local(
        args.redis_url, servers.start_redis, "Redis",
        "redis-server not found (install redis-server or pass --redis-url)",
    )  # fmt: skip
    if (database_url is None or redis_url is None) and not stop.is_set():
        _say("without a database and Redis, /items answers 503 (pass --database-url and --redis-url)")
    return database_url, redis_url


def _interrupted(interrupted: list[int], metrics_url: str | None, sent: Counter) -> int:
    _say("")
    _say(f"stopped by {signal.Signals(interrupted[0]).name}" if interrupted else "stopped")
    _say(_summary(metrics_url, sent))
    return 128 + interrupted[0] if interrupted else 1


async def _serve(
    args: argparse.Namespace,
    listener: socket.socket,
    pipeline: Any,
    instrumented: list[str],
    database_url: str | None,
    redis_url: str | None,
    stop: asyncio.Event,
    sent: Counter,
    metrics_url: str | None,
    interrupted: list[int],
) -> int:
    import uvicorn

    from .app import Backends, build_app

    backends = Backends(database_url, redis_url)
    app = build_app(backends)
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="on"))
    # the socket bound at start: a taken port was reported before anything was started
    serve = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if serve.done() or stop.is_set():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            if stop.is_set():
                return _interrupted(interrupted, metrics_url, sent)
            problem = backends.error or "see the messages above"
            _fail(f"the demo app could not start: {problem}")
            return 1
        port = listener.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        _say(f"demo app:      {base}/  (items: {base}/items/1)")
        _say(f"health:        {base}/health  {base}/health/live  {base}/health/ready")
        _say(f"metrics:       {metrics_url or 'exported over ' + ', '.join(pipeline.exporters)}")
        _say(f"instrumented:  {', '.join(instrumented) or 'system metrics only'}")
        await _drive(base, args.duration, args.rps, sent, stop)
        if stop.is_set():
            return _interrupted(interrupted, metrics_url, sent)
        _say("")
        _say(_summary(metrics_url, sent))
        return 0
    finally:
        server.should_exit = True
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(serve, 10)


async def _drive(base: str, duration: float, rps: float, statuses: Counter, stop: asyncio.Event) -> None:
    """Send the demo's traffic mix at `rps` for `duration` seconds (or until `stop`), counting
    answers by status into `statuses` and showing progress."""
    import httpx

    from .app import random_path

    tty = sys.stdout.isatty()
    interval = 1.0 / rps if rps > 0 else 0.0
    start = time.monotonic()
    last_line = 0.0
    next_probe = start  # a readiness probe first and then each second, as Kubernetes sends them
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while (duration <= 0 or time.monotonic() - start < duration) and not stop.is_set():
            if time.monotonic() >= next_probe:
                method, path, headers = "GET", "/health/ready", None
                next_probe = time.monotonic() + 1.0
            else:
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
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


def _summary(metrics_url: str | None, sent: Counter) -> str:
    lines = [f"sent {sum(sent.values())} requests: {dict(sorted(sent.items(), key=str))}"]
    if metrics_url is None:
        return "\n".join(lines)
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from covet_otel.catalogue import BY_NAME

    try:
        families = list(text_string_to_metric_families(httpx.get(metrics_url, timeout=10).text))
    except (httpx.HTTPError, ValueError) as exc:
        lines.append(f"covet_* series at {metrics_url}: not readable ({exc})")
        return "\n".join(lines)
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
