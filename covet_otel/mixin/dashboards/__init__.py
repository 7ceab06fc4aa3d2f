"""Grafana dashboards as code, built from the MixinConfig with grafana-foundation-sdk.

    from covet_otel.mixin.dashboards import build_dashboards, write
    models = build_dashboards(config)        # {uid: dashboard JSON model}
    write(config, Path("grafana"))           # grafana/dashboards/*.json + grafana/provisioning/

`covet-otel mixin build` calls `write` (covet_otel/mixin/build.py); docs/dashboards.md describes
every dashboard.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import DASHBOARD_UIDS, MixinConfig

# The CovetPy pack's dashboards and their panel counts (the minimum each must keep).
PACK_PANEL_COUNTS: dict[str, int] = {
    "covetpy-db-pool": 8,
    "covetpy-query-perf": 4,
    "covetpy-security": 4,
    "covetpy-system": 6,
    "covetpy-cache": 4,
    "covetpy-business": 4,
    "covetpy-backup": 5,
    "covetpy-migrations": 5,
}


def _builders() -> dict[str, Callable[[Any], dict[str, Any]]]:
    # imported here: the SDK is an optional dependency (extra "mixin"), needed only to build
    try:
        from . import extra, pack
        from ._kit import Kit  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"building the dashboards needs grafana-foundation-sdk ({exc}); "
            "install it with: pip install 'covet-otel[mixin]'"
        ) from exc
    return {
        "covetpy-db-pool": pack.db_pool,
        "covetpy-query-perf": pack.query_perf,
        "covetpy-security": pack.security,
        "covetpy-system": pack.system,
        "covetpy-cache": pack.cache,
        "covetpy-business": pack.business,
        "covetpy-backup": pack.backup,
        "covetpy-migrations": pack.migrations,
        "covet-overview": extra.overview,
        "covet-http": extra.http,
        "covet-slo": extra.slo,
        "covet-postgresql": extra.postgresql,
        "covet-redis": extra.redis,
        "covet-collector": extra.collector,
    }


def build_dashboards(config: MixinConfig) -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model, by UID, in DASHBOARD_UIDS order."""
    from ._kit import Kit

    builders = _builders()
    missing = set(DASHBOARD_UIDS) - set(builders)
    if missing:
        raise RuntimeError(f"no builder for dashboards {sorted(missing)}")
    kit = Kit(config)
    return {uid: builders[uid](kit) for uid in DASHBOARD_UIDS}


def dumps(model: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, trailing newline (stable diffs)."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(config: MixinConfig, out_dir: Path) -> list[Path]:
    """Write grafana/dashboards/<uid>.json and grafana/provisioning/ under `out_dir` (the grafana/
    folder); files of dashboards no longer built are removed. Returns the paths written."""
    from .provisioning import write_provisioning

    out_dir = Path(out_dir)
    dash_dir = out_dir / "dashboards"
    dash_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    models = build_dashboards(config)
    for uid, model in models.items():
        path = dash_dir / f"{uid}.json"
        path.write_text(dumps(model), encoding="utf-8")
        written.append(path)
    for stale in dash_dir.glob("*.json"):
        if stale not in written:
            stale.unlink()
    written += write_provisioning(out_dir / "provisioning")
    return written
