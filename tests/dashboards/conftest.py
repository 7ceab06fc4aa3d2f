"""Fixtures of the dashboard tests: the definition, the committed dashboards, the structural checker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness import tools

from covet_otel.mixin.config import MixinConfig, load_config

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
CHECKER_SRC = REPO / "tools" / "dashboard-check"


@pytest.fixture(scope="session")
def config() -> MixinConfig:
    return load_config()


@pytest.fixture(scope="session")
def committed() -> dict[str, dict[str, Any]]:
    """The committed dashboards by UID (what users import)."""
    models = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        model = json.loads(path.read_text(encoding="utf-8"))
        models[model["uid"]] = model
    return models


@pytest.fixture(scope="session")
def dashboard_check(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dashboard-check binary that tools/dashboard-check/build.sh installs for the pinned SDK
    version; when absent, built here from the same sources (needs Go and the module proxy)."""
    pinned = tools.version("GRAFANA_FOUNDATION_SDK_GO_VERSION")
    installed = tools.tools_dir() / "pkg" / f"dashboard-check-{pinned}" / "dashboard-check"
    if installed.is_file() and (installed.parent / ".complete").exists():
        return installed
    go = shutil.which("go")
    if go is None:
        tools.missing(f"dashboard-check {pinned}", f"expected {installed}, and no Go toolchain to build it")
    out = tmp_path_factory.mktemp("dashboard-check") / "dashboard-check"
    env = {**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false", "CGO_ENABLED": "0"}
    env.setdefault("GOPROXY", "https://proxy.golang.org")
    subprocess.run([go, "build", "-o", str(out), "."], cwd=CHECKER_SRC, env=env, check=True, timeout=600)
    return out
