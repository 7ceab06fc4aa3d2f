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
