"""Locate the real binaries that scripts/install-tools.sh installs.

Pinned versions come from ``tools/versions.env`` (KEY=VALUE, no expansion). Go tools live in
``$COVET_TOOLS_DIR/pkg/<tool>-<version>/`` (default ``~/.cache/covet-otel/tools``), so a binary built
for an older pin is never picked up. Debian packages are found at their packaged paths.

A missing binary skips the test, except under ``CI=true`` where it is an error naming the install
script (DESIGN.md: under CI a missing component is a failure, never a skip).
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "tools" / "versions.env"
INSTALL_HINT = "run scripts/install-tools.sh"

# binary name -> (package directory name, versions.env key)
GO_TOOLS: dict[str, tuple[str, str]] = {
    "prometheus": ("prometheus", "PROMETHEUS_MODULE_VERSION"),
    "promtool": ("prometheus", "PROMETHEUS_MODULE_VERSION"),
    "alertmanager": ("alertmanager", "ALERTMANAGER_VERSION"),
    "amtool": ("alertmanager", "ALERTMANAGER_VERSION"),
    "victoria-metrics": ("victoria-metrics", "VICTORIAMETRICS_VERSION"),
}


class ToolMissingError(RuntimeError):
    """A real component the tests need is not installed (raised under CI=true)."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str, detail: str = "") -> None:
    """Report a missing component: an error under CI=true, a skip otherwise. Never returns."""
    msg = f"{what} is not installed{': ' + detail if detail else ''} — {INSTALL_HINT}"
    if in_ci():
        raise ToolMissingError(msg)
    pytest.skip(msg)


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """The pins of tools/versions.env as a dict (comments and blank lines ignored)."""
    result: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result[key.strip()] = value
    return result


def version(key: str) -> str:
    value = versions().get(key, "")
    if not value:
        raise ToolMissingError(f"{key} is not pinned in {VERSIONS_FILE}")
    return value


def tools_dir() -> Path:
    env = os.environ.get("COVET_TOOLS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "covet-otel" / "tools"


def bin_dir() -> Path:
    return tools_dir() / "bin"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def go_tool(name: str) -> Path:
    """Path of a Go tool built for the pinned version (prometheus, promtool, alertmanager, amtool,
    victoria-metrics)."""
    if name not in GO_TOOLS:
        raise KeyError(f"unknown Go tool {name!r}; known: {sorted(GO_TOOLS)}")
    package, key = GO_TOOLS[name]
    pinned = version(key)
    path = tools_dir() / "pkg" / f"{package}-{pinned}" / name
    if not _executable(path) or not (path.parent / ".complete").exists():
        missing(f"{name} {pinned}", f"expected {path}")
    return path


def prometheus() -> Path:
    return go_tool("prometheus")


def promtool() -> Path:
    return go_tool("promtool")


def alertmanager() -> Path:
    return go_tool("alertmanager")


def amtool() -> Path:
    return go_tool("amtool")


def victoria_metrics() -> Path:
    return go_tool("victoria-metrics")


def postgres_bin_dir() -> Path:
    """Directory of the PostgreSQL server binaries (initdb, postgres, pg_isready, createdb)."""
    major = version("POSTGRESQL_MAJOR")
    path = Path(f"/usr/lib/postgresql/{major}/bin")
    for exe in ("initdb", "postgres", "pg_isready"):
        if not _executable(path / exe):
            missing(f"PostgreSQL {major} server", f"expected {path / exe}")
    return path


def redis_server() -> Path:
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    path = Path(found)
    if not _executable(path):
        missing("redis-server", "expected on PATH or at /usr/bin/redis-server")
    return path


def postgres_exporter() -> Path:
    """postgres_exporter from Debian's prometheus-postgres-exporter package."""
    found = shutil.which("prometheus-postgres-exporter") or "/usr/bin/prometheus-postgres-exporter"
    path = Path(found)
    if not _executable(path):
        missing(
            "prometheus-postgres-exporter", "expected on PATH or at /usr/bin/prometheus-postgres-exporter"
        )
    return path


def find_binary(name: str, *candidates: str | os.PathLike[str]) -> Path:
    """First executable among ``candidates``, then ``$COVET_TOOLS_DIR/bin/<name>``, then PATH.

    For components built by other scripts (e.g. the collector from collector/build.sh)."""
    for cand in (*candidates, bin_dir() / name):
        path = Path(cand).expanduser()
        if _executable(path):
            return path
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    missing(name, f"looked in {[str(c) for c in candidates] + [str(bin_dir() / name)]} and PATH")
    raise AssertionError("unreachable")  # missing() never returns
