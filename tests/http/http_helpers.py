"""Helpers shared by the HTTP tests (a module of its own: `conftest` is ambiguous across folders)."""

from __future__ import annotations

import importlib.util
import itertools
import time
from pathlib import Path
from types import ModuleType

import httpx

APPS = Path(__file__).resolve().parent / "apps"
_loaded = itertools.count()


def load_app_module(name: str) -> ModuleType:
    """A fresh copy of an app module (a new app object, built after the instrumentor ran)."""
    spec = importlib.util.spec_from_file_location(f"{name}_{next(_loaded)}", APPS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def http_series(samples, name: str = "covet_http_requests_total") -> list[dict[str, str]]:
    """Label sets with a non-zero value (the `metrics` fixture zeroes series but they stay listed)."""
    return [labels for labels in samples.series(name) if samples.value(name, **labels)]


def request_counts(samples) -> dict[tuple[str, str, str], float]:
    """covet_http_requests_total as {(method, route, status_code): value}, non-zero series only."""
    return {
        (s["method"], s["route"], s["status_code"]): samples.value("covet_http_requests_total", **s)
        for s in http_series(samples)
    }


def wait_until_serving(url: str, proc, timeout: float = 30.0) -> None:
    """Poll `url` until the server answers (any status)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            out, _ = proc.communicate()
            raise AssertionError(f"server exited {proc.returncode}: {out}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never answered")
        time.sleep(0.1)
