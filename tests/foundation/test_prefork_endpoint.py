"""Pre-fork servers on the embedded endpoint: the master serves /metrics, the workers' series are
on it (export/workers.py), and totals survive a worker being replaced."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from covet_fixtures import free_tcp_port, launch

FLASK_APP = """
from flask import Flask
app = Flask(__name__)

@app.get("/items/<int:item_id>")
def item(item_id):
    return {"id": item_id}
"""

STARLETTE_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def item(request):
    return JSONResponse({"id": request.path_params["item_id"]})

app = Starlette(routes=[Route("/items/{item_id:int}", item)])
"""


def _wait_serving(port: int, app) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, app.output()
            time.sleep(0.2)


def _drive(port: int, n: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for i in range(n):
            assert client.get(f"/items/{i}").status_code == 200


def _requests_total(app, route: str) -> float:
    return app.scrape().total("covet_http_requests_total", route=route, status_code="200")


def _wait_for_total(app, route: str, expected: float, timeout: float = 15.0) -> float:
    deadline = time.monotonic() + timeout
    while True:
        total = _requests_total(app, route)
        if total == expected or time.monotonic() > deadline:
            return total
        time.sleep(0.3)


def _worker_pids(master_pid: int) -> list[int]:
    """gunicorn's workers: children of its master (under the launcher, the master is the
    launched process itself: opentelemetry-instrument execs it)."""
    pids = []
    for child in psutil.Process(master_pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "gunicorn" in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:
            continue
    return pids


def test_gunicorn_workers_show_on_the_masters_endpoint(tmp_path: Path) -> None:
    (tmp_path / "flaskapp.py").write_text(FLASK_APP)
    port = free_tcp_port()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    app = launch(
        [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(tmp_path), "flaskapp:app"],
        env={"OTEL_SERVICE_NAME": "shop"},
    )
    try:
        _wait_serving(port, app)
        _drive(port, 200)
        assert _wait_for_total(app, "/items/<int:item_id>", 200) == 200
        # a worker replaced by gunicorn: its requests stay counted
        victim = _worker_pids(app.proc.pid)[0]
        os.kill(victim, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while victim in _worker_pids(app.proc.pid) or len(_worker_pids(app.proc.pid)) < 2:
            assert time.monotonic() < deadline, "gunicorn did not replace the worker"
            time.sleep(0.2)
        _drive(port, 50)
        assert _wait_for_total(app, "/items/<int:item_id>", 250) == 250
        samples = app.scrape()
        # host-wide figures are the master's alone, not one copy per worker
        assert len(samples.series("covet_system_memory_total_bytes")) == 1
        assert samples.value("covet_system_memory_total_bytes") == psutil.virtual_memory().total
    finally:
        app.stop()


@pytest.mark.parametrize("workers", [2])
def test_uvicorn_spawned_workers_show_on_the_parents_endpoint(tmp_path: Path, workers: int) -> None:
    (tmp_path / "starletteapp.py").write_text(STARLETTE_APP)
    port = free_tcp_port()
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    app = launch(
        [
            uvicorn,
            "--workers",
            str(workers),
            "--port",
            str(port),
            "--app-dir",
            str(tmp_path),
            "starletteapp:app",
        ],
        env={"OTEL_SERVICE_NAME": "shop"},
    )
    try:
        _wait_serving(port, app)
        _drive(port, 100)
        assert _wait_for_total(app, "/items/{item_id}", 100) == 100
    finally:
        app.stop()


# -- issue 17, points 11 and 12: only real workers count; nothing is left behind --------------------


def _children(pid: int) -> tuple[list[int], list[int]]:
    """(spawned uvicorn workers, multiprocessing resource trackers) among `pid`'s children."""
    workers, trackers = [], []
    for child in psutil.Process(pid).children():
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "resource_tracker" in command:
            trackers.append(child.pid)
        elif "spawn_main" in command:
            workers.append(child.pid)
    return workers, trackers


def _share_dirs(owner: int) -> list[Path]:
    import tempfile

    return sorted(Path(tempfile.gettempdir()).glob(f"covet-otel-workers-{owner}-*"))


def _snapshot_pids(owner: int) -> set[int]:
    return {int(p.stem) for d in _share_dirs(owner) for p in d.glob("*.json")}


@pytest.mark.parametrize("mode", [["--workers", "2"], ["--reload"]], ids=["workers", "reload"])
def test_uvicorn_resource_tracker_is_no_worker_and_clean_exit_leaves_nothing(tmp_path: Path, mode) -> None:
    import tempfile

    (tmp_path / "starletteapp.py").write_text(STARLETTE_APP)
    # what a SIGKILLed owner left: its pid is above any pid_max, so it is certainly dead
    stale = Path(tempfile.mkdtemp(prefix="covet-otel-workers-99999999-"))
    (stale / "1.json").write_text("{}")
    port = free_tcp_port()
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    app = launch(
        [uvicorn, *mode, "--port", str(port), "--app-dir", str(tmp_path), "starletteapp:app"],
        env={"OTEL_SERVICE_NAME": "shop"},
    )
    owner = app.proc.pid
    try:
        _wait_serving(port, app)
        assert not stale.exists()
        _drive(port, 20)
        expected = 2 if mode[0] == "--workers" else 1
        deadline = time.monotonic() + 20
        while True:
            workers, trackers = _children(owner)
            if len(workers) == expected and _snapshot_pids(owner) >= set(workers):
                break
            assert time.monotonic() < deadline, (workers, trackers, _snapshot_pids(owner))
            time.sleep(0.2)
        assert len(trackers) == 1  # it exists, and is not among the snapshots
        time.sleep(1.5)  # a tracker that wrote snapshots would have written one by now
        assert _snapshot_pids(owner) == set(workers)
        assert _wait_for_total(app, "/items/{item_id}", 20) == 20
    finally:
        app.stop()
    assert app.proc.returncode is not None
    # the tracker outlives the owner briefly; a last snapshot of its must not bring the folder back
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(t) and psutil.Process(t).status() != psutil.STATUS_ZOMBIE for t in trackers):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1.5)
    assert _share_dirs(owner) == []


def test_otlp_under_uvicorn_workers_has_no_tracker_instance(tmp_path: Path, prometheus_factory) -> None:
    (tmp_path / "starletteapp.py").write_text(STARLETTE_APP)
    prom = prometheus_factory()
    port = free_tcp_port()
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    service = "shop-otlp-workers"
    app = launch(
        [uvicorn, "--workers", "2", "--port", str(port), "--app-dir", str(tmp_path), "starletteapp:app"],
        env={
            "OTEL_SERVICE_NAME": service,
            "OTEL_EXPORTER_OTLP_ENDPOINT": prom.otlp_endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        },
        prometheus=False,
    )
    try:
        _wait_serving(port, app)
        _drive(port, 20)
        rss = f'covet_process_memory_rss_bytes{{job="{service}"}}'
        # the supervisor and two workers push; the resource tracker must not be a fourth instance
        prom.wait_for(f"count({rss})", lambda r: bool(r) and float(r[0]["value"][1]) >= 3, timeout=30)
        time.sleep(3)  # several more export intervals: a fourth pusher would show by now
        instances = prom.query(f"count by (instance) ({rss})")
        assert len(instances) == 3, instances
        pids = {
            int(r["value"][1]) for r in prom.query(f'count by (instance) (target_info{{job="{service}"}})')
        }
        assert pids == {1}
        workers, trackers = _children(app.proc.pid)
        assert len(workers) == 2 and len(trackers) == 1
    finally:
        app.stop()
