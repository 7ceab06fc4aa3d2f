"""The health runner and endpoints with custom checks (no external servers)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest
from health_helpers import checks_of, client, run
from starlette.applications import Starlette
from starlette.routing import Mount

from covet_otel import health
from covet_otel.health import CheckResult, HealthRegistry, health_asgi_app, health_wsgi_app, serve
from covet_otel.settings import Settings, current, set_current


def test_custom_sync_and_async_checks_pass_with_details_for_the_token() -> None:
    registry = HealthRegistry(cache_seconds=60, timeout=1)
    seen_threads: list[str] = []

    def sync_check() -> bool:
        seen_threads.append(threading.current_thread().name)
        return True

    @registry.check("queue:depth", critical=False, component_type="component")
    async def async_check() -> CheckResult:
        await asyncio.sleep(0)
        return CheckResult("pass", 12, "{message}", component_id="jobs")

    registry.register("cache:warm", sync_check)

    async def main() -> None:
        async with client(health_asgi_app(registry, token="s3cret")) as c:
            plain = await c.get("/health")
            detailed = await c.get("/health", headers={"Authorization": "Bearer s3cret"})
        assert plain.status_code == 200 and plain.json()["status"] == "pass"
        assert checks_of(plain)["queue:depth"].keys() == {"componentType", "status", "time"}
        entry = checks_of(detailed)["queue:depth"]
        assert entry["status"] == "pass"
        assert entry["componentId"] == "jobs"
        assert (entry["observedValue"], entry["observedUnit"]) == (12, "{message}")
        assert entry["critical"] is False
        assert "output" not in entry  # pass: the draft says to omit it
        assert checks_of(detailed)["cache:warm"]["status"] == "pass"

    run(main())
    assert seen_threads and seen_threads[0] != threading.main_thread().name


def test_sync_checks_run_in_a_thread_and_never_block_the_loop() -> None:
    registry = HealthRegistry(cache_seconds=60, timeout=2)
    registry.register("slow:sync", lambda: time.sleep(0.4) or True)

    async def main() -> int:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        status, _ = await registry.response("all")
        done.set()
        await task
        assert status == 200
        return ticks

    # 0.4 s of sleep in the check; a blocked loop would tick once or twice
    assert run(main()) >= 15


def test_check_return_values() -> None:
    registry = HealthRegistry(cache_seconds=60, timeout=1)
    registry.register("a:none", lambda: None)
    registry.register("b:true", lambda: True)
    registry.register("c:false", lambda: False, critical=False)
    registry.register("d:warn", lambda: "warn", critical=False)
    registry.register("e:bad", lambda: 42, critical=False)

    async def coro_factory() -> str:
        return "pass"

    registry.register("f:lambda-coroutine", lambda: coro_factory())
    statuses = {run.name: run.result.status for run in run(registry.results()).runs}
    assert statuses == {
        "a:none": "pass",
        "b:true": "pass",
        "c:false": "fail",
        "d:warn": "warn",
        "e:bad": "fail",
        "f:lambda-coroutine": "pass",
    }


def test_non_critical_failure_gives_warn_and_200() -> None:
    registry = HealthRegistry(cache_seconds=60, timeout=1)
    registry.register("core:ok", lambda: True)

    def broken() -> None:
        raise RuntimeError("optional dependency down")

    registry.register("optional:reachable", broken, critical=False)

    async def main() -> None:
        async with client(health_asgi_app(registry)) as c:
            everything = await c.get("/health")
            ready = await c.get("/health/ready")
        assert everything.status_code == 200
        assert everything.json()["status"] == "warn"
        assert checks_of(everything)["optional:reachable"]["status"] == "fail"
        # readiness is about critical dependencies only
        assert ready.status_code == 200
        assert ready.json()["status"] == "pass"
        assert set(checks_of(ready)) == {"core:ok"}

    run(main())


def test_critical_failure_gives_503() -> None:
    registry = HealthRegistry(cache_seconds=60, timeout=1)
    registry.register("core:ok", lambda: True)
    registry.register("core:down", lambda: False)

    async def main() -> None:
        async with client(health_asgi_app(registry)) as c:
            for path in ("/health", "/health/ready", "/health/startup"):
                response = await c.get(path)
                assert response.status_code == 503, path
                assert response.json()["status"] == "fail"
            live = await c.get("/health/live")
        assert live.status_code == 200
        assert live.json() == {"status": "pass"}

    run(main())


def test_hung_async_check_fails_at_its_timeout() -> None:
    registry = HealthRegistry(cache_seconds=0.05, timeout=5)
    cancelled = []

    async def hangs() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    registry.register("slow:async", hangs, timeout=0.3)
    registry.register("fast:ok", lambda: True)

    async def main() -> float:
        started = time.monotonic()
        status, body = await registry.response("ready", detailed=True)
        elapsed = time.monotonic() - started
        assert status == 503
        entry = json.loads(body)["checks"]["slow:async"][0]
        assert entry["status"] == "fail"
        assert entry["output"] == "timed out after 0.3 s"
        assert json.loads(body)["checks"]["fast:ok"][0]["status"] == "pass"
        await asyncio.sleep(0)
        return elapsed

    elapsed = run(main())
    assert 0.3 <= elapsed < 1.0
    assert cancelled == [True]


def test_hung_sync_check_is_not_started_again_while_it_hangs() -> None:
    registry = HealthRegistry(cache_seconds=0.01, timeout=0.2)
    release = threading.Event()
    calls = []

    def hangs() -> bool:
        calls.append(1)
        release.wait(10)
        return True

    registry.register("stuck:sync", hangs)

    async def main() -> None:
        first = await registry.results()
        assert first.runs[0].result.output == "timed out after 0.2 s"
        await asyncio.sleep(0.05)
        second = await registry.results()
        assert second.runs[0].result.status == "fail"
        assert second.runs[0].result.output == "the previous run timed out and has not finished yet"
        assert len(calls) == 1
        release.set()
        await asyncio.sleep(0.1)
        third = await registry.results()
        assert third.runs[0].result.status == "pass"
        assert len(calls) == 2

    run(main())


def test_interval_reuses_a_result_across_rounds() -> None:
    registry = HealthRegistry(cache_seconds=0.01, timeout=1)
    calls = []
    registry.register("expensive:check", lambda: calls.append(1) or True, interval=60)
    registry.register("cheap:check", lambda: calls.append(2) or True)

    async def main() -> None:
        for _ in range(3):
            await registry.results()
            await asyncio.sleep(0.02)

    run(main())
    assert calls.count(1) == 1
    assert calls.count(2) == 3


def test_concurrent_probes_share_one_round() -> None:
    registry = HealthRegistry(cache_seconds=0.5, timeout=2)
    calls = []

    async def counted() -> bool:
        calls.append(1)
        await asyncio.sleep(0.05)
        return True

    registry.register("dep:ping", counted)

    async def main() -> None:
        async with client(health_asgi_app(registry)) as c:
            responses = await asyncio.gather(*(c.get("/health/ready") for _ in range(100)))
            assert {r.status_code for r in responses} == {200}
            assert len(calls) == 1
            await asyncio.sleep(0.6)
            await asyncio.gather(*(c.get("/health") for _ in range(100)))
            assert len(calls) == 2

    run(main())


def test_startup_waits_for_the_signal_and_first_checks_then_stays_passed() -> None:
    registry = HealthRegistry(cache_seconds=0.01, timeout=1, wait_for_startup=True)
    healthy = [False]
    registry.register("db:ping", lambda: healthy[0])

    async def main() -> None:
        async with client(health_asgi_app(registry, token="t")) as c:
            before = await c.get("/health/startup", headers={"Authorization": "Bearer t"})
            assert before.status_code == 503
            assert before.json() == {"status": "fail", "output": "start-up has not finished"}
            registry.mark_started()
            assert (await c.get("/health/startup")).status_code == 503  # the check still fails
            healthy[0] = True
            await asyncio.sleep(0.02)
            assert (await c.get("/health/startup")).status_code == 200
            healthy[0] = False
            await asyncio.sleep(0.02)
            # start-up happened once; a later failure is readiness' business
            assert (await c.get("/health/startup")).status_code == 200
            assert (await c.get("/health/ready")).status_code == 503

    run(main())


def test_no_exception_text_without_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = HealthRegistry(cache_seconds=60, timeout=1)

    def leaks() -> None:
        raise RuntimeError("connect to db.internal:5432 as admin password=hunter2 failed")

    registry.register("db:login", leaks)
    original = current()
    set_current(Settings(health_token="tok-123"))
    try:

        async def main() -> None:
            async with client(health_asgi_app(registry)) as c:
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "tok-123"}):
                    response = await c.get("/health", headers=headers)
                    assert response.status_code == 503
                    for secret in ("hunter2", "db.internal", "admin", "5432", "RuntimeError", "output"):
                        assert secret not in response.text, (headers, secret)
                good = await c.get("/health", headers={"Authorization": "Bearer tok-123"})
                assert checks_of(good)["db:login"]["output"] == (
                    "RuntimeError: connect to db.internal:5432 as admin password=hunter2 failed"
                )

        run(main())
    finally:
        set_current(original)


def test_no_details_at_all_when_no_token_is_configured() -> None:
    registry = HealthRegistry(cache_seconds=60, timeout=1)
    registry.register("db:login", lambda: 1 / 0)
    assert current().health_token is None

    async def main() -> None:
        async with client(health_asgi_app(registry)) as c:
            response = await c.get("/health", headers={"Authorization": "Bearer "})
        assert "ZeroDivisionError" not in response.text
        assert checks_of(response)["db:login"].keys() == {"componentType", "status", "time"}

    run(main())


def test_paths_methods_and_mounting_in_starlette() -> None:
    registry = HealthRegistry(cache_seconds=60, timeout=1)
    registry.register("core:ok", lambda: True)
    app = Starlette(routes=[Mount("/health", app=health_asgi_app(registry))])

    async def main() -> None:
        async with client(app) as c:
            for path in ("/health/", "/health/live", "/health/ready", "/health/startup", "/health/ready/"):
                response = await c.get(path)
                assert response.status_code == 200, path
                assert response.headers["cache-control"] == "no-store"
            assert (await c.get("/health/nope")).status_code == 404
            assert (await c.post("/health/ready")).status_code == 405
            head = await c.head("/health/ready")
            assert head.status_code == 200 and head.content == b""

    run(main())


def test_wsgi_app() -> None:
    registry = HealthRegistry(cache_seconds=60, timeout=1)
    registry.register("core:ok", lambda: True)
    registry.register("optional:x", lambda: "warn", critical=False)

    async def async_ok() -> bool:  # async checks run on the private loop for WSGI callers
        return True

    registry.register("async:ok", async_ok)
    app = health_wsgi_app(registry, token="w")
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://probe") as c:
        everything = c.get("/health", headers={"Authorization": "Bearer w"})
        assert everything.status_code == 200
        assert everything.json()["status"] == "warn"
        assert checks_of(everything)["async:ok"]["status"] == "pass"
        assert checks_of(everything)["optional:x"]["critical"] is False
        assert c.get("/ready").json()["status"] == "pass"
        assert c.get("/live").json() == {"status": "pass"}
        assert c.get("/other").status_code == 404
        assert c.delete("/ready").status_code == 405


def test_standalone_server_over_real_http() -> None:
    registry = HealthRegistry(cache_seconds=30, timeout=1)
    calls = []
    registry.register("worker:heartbeat", lambda: calls.append(1) or True)
    registry.register("worker:queue", lambda: False, critical=False)
    server = serve(0, registry=registry)
    try:
        results: list[httpx.Response] = []
        barrier = threading.Barrier(20)

        def probe() -> None:
            with httpx.Client(timeout=5) as c:
                barrier.wait()
                results.append(c.get(server.url + "/health/ready"))

        threads = [threading.Thread(target=probe) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.status_code for r in results] == [200] * 20
        assert len(calls) == 1
        everything = httpx.get(server.url + "/health", timeout=5)
        assert everything.status_code == 200 and everything.json()["status"] == "warn"
        assert httpx.get(server.url + "/health/live", timeout=5).json() == {"status": "pass"}
    finally:
        server.stop()


def test_module_level_registry_and_register_check() -> None:
    check = health.register_check("module:level", lambda: True, critical=False, timeout=0.5)
    try:
        assert check in health.registry.checks
        assert check.timeout == 0.5 and not check.critical
        app = health.health_asgi_app()
        assert app.registry is health.registry
    finally:
        health.registry.remove("module:level")


def test_bad_check_definitions_are_rejected() -> None:
    with pytest.raises(ValueError):
        health.Check("", lambda: True)
    with pytest.raises(ValueError):
        health.Check("x:y", lambda: True, timeout=0)
    with pytest.raises(ValueError):
        CheckResult("ok")  # type: ignore[arg-type]


def test_status_and_duration_metrics_on_the_scrape(metrics) -> None:
    registry = HealthRegistry(cache_seconds=0.01, timeout=0.2)
    registry.register("metric:pass", lambda: True)
    registry.register("metric:warn", lambda: "warn", critical=False)
    registry.register("metric:fail", lambda: False, critical=False)

    async def hangs() -> None:
        await asyncio.sleep(10)

    registry.register("metric:timeout", hangs)
    run(registry.results())
    samples = metrics.scrape()
    assert samples.value("covet_health_check_status", check="metric:pass") == 1.0
    assert samples.value("covet_health_check_status", check="metric:warn") == 0.5
    assert samples.value("covet_health_check_status", check="metric:fail") == 0.0
    assert samples.value("covet_health_check_status", check="metric:timeout") == 0.0
    assert samples.value("covet_health_check_duration_seconds_count", check="metric:pass") == 1.0
    assert samples.value("covet_health_check_duration_seconds_count", check="metric:timeout") == 1.0
    # the timed-out run lasted its timeout
    assert samples.value("covet_health_check_duration_seconds_sum", check="metric:timeout") >= 0.2
    assert samples.value("covet_health_check_duration_seconds_bucket", check="metric:timeout", le="0.25") == 1
    assert samples.value("covet_health_check_duration_seconds_bucket", check="metric:timeout", le="0.1") == 0


def test_a_span_per_check_run_when_tracing_is_configured() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = HealthRegistry(cache_seconds=60, timeout=1, tracer_provider=provider)
    registry.register("traced:ok", lambda: True)
    registry.register("traced:down", lambda: False, critical=False)
    run(registry.results())
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"health check traced:ok", "health check traced:down"}
    assert dict(spans["health check traced:ok"].attributes) == {
        "covet.health.check": "traced:ok",
        "covet.health.status": "pass",
    }
    assert dict(spans["health check traced:down"].attributes) == {
        "covet.health.check": "traced:down",
        "covet.health.status": "fail",
    }
    assert spans["health check traced:down"].status.status_code.name == "ERROR"
    assert spans["health check traced:ok"].status.status_code.name == "UNSET"
    # one root span per check: the round itself is not a span, and no check nests in another
    assert {span.parent for span in spans.values()} == {None}


def test_mounted_in_fastapi_and_flask() -> None:
    from fastapi import FastAPI
    from flask import Flask
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    registry = HealthRegistry(cache_seconds=60, timeout=1)
    registry.register("core:ok", lambda: True)
    registry.register("core:down", lambda: False, critical=False)

    api = FastAPI()
    api.mount("/health", health_asgi_app(registry))

    async def main() -> None:
        async with client(api) as c:
            ready = await c.get("/health/ready")
            assert ready.status_code == 200 and set(checks_of(ready)) == {"core:ok"}
            everything = await c.get("/health/")
            assert everything.status_code == 200 and everything.json()["status"] == "warn"

    run(main())

    flask_app = Flask("probe")
    flask_app.wsgi_app = DispatcherMiddleware(flask_app.wsgi_app, {"/health": health_wsgi_app(registry)})
    with httpx.Client(transport=httpx.WSGITransport(app=flask_app), base_url="http://probe") as c:
        ready = c.get("/health/ready")
        assert ready.status_code == 200
        assert ready.headers["content-type"] == "application/health+json"
        assert ready.json()["status"] == "pass"
        assert c.get("/health/live").json() == {"status": "pass"}
