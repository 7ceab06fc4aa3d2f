"""The committed grafana/ folder is what the definition builds; a user's override reaches the
dashboards through the same CLI as the alerts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from covet_otel.mixin.config import DASHBOARD_UIDS, MixinConfig, load_config
from covet_otel.mixin.dashboards import PACK_PANEL_COUNTS, build_dashboards, write
from covet_otel.mixin.dashboards.lint import lint, panels

from .conftest import GRAFANA


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_committed_grafana_folder_is_fresh(tmp_path: Path, config: MixinConfig) -> None:
    write(config, tmp_path / "grafana")
    fresh, committed = _files(tmp_path / "grafana"), _files(GRAFANA)
    assert sorted(fresh) == sorted(committed), "run `covet-otel mixin build` and commit grafana/"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert stale == [], f"stale: {stale}; run `covet-otel mixin build` and commit grafana/"


def test_build_is_deterministic(config: MixinConfig) -> None:
    assert json.dumps(build_dashboards(config)) == json.dumps(build_dashboards(config))


def test_every_uid_with_the_pack_panel_counts(committed: dict) -> None:
    assert sorted(committed) == sorted(DASHBOARD_UIDS)
    counts = {uid: len(list(panels(committed[uid]))) for uid in PACK_PANEL_COUNTS}
    assert all(counts[uid] >= want for uid, want in PACK_PANEL_COUNTS.items()), counts
    assert all("covet" in m["tags"] for m in committed.values())


def test_override_moves_the_drawn_threshold(tmp_path: Path) -> None:
    override = tmp_path / "my.yaml"
    override.write_text(
        yaml.safe_dump(
            {
                "grafana_url": "https://grafana.example.com",
                "runbook_base_url": "https://wiki.example.com/runbooks/",
                "alerts": {
                    "DatabaseHighQueryLatency": {"thresholds": {"p95_seconds": 0.25}},
                    "HighMemoryUsage": {"thresholds": {"used_percent": 80}},
                },
            }
        )
    )
    config = load_config(override)
    models = build_dashboards(config)
    assert lint(models, config) == []

    latency = next(
        p for p in panels(models["covetpy-query-perf"]) if p["title"] == "Query latency p95 by operation"
    )
    steps = latency["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps == [{"color": "green", "value": None}, {"color": "red", "value": 0.25}]
    assert latency["links"][0]["url"] == "https://wiki.example.com/runbooks/database-high-query-latency.md"

    memory = next(p for p in panels(models["covetpy-system"]) if p["title"] == "Host memory used")
    assert [s["value"] for s in memory["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 80]


def test_disabled_alert_is_neither_drawn_nor_linked(tmp_path: Path) -> None:
    override = tmp_path / "my.yaml"
    override.write_text("alerts:\n  PostgreSQLReplicationLag:\n    enabled: false\n")
    config = load_config(override)
    models = build_dashboards(config)
    lag = next(p for p in panels(models["covet-postgresql"]) if p["title"] == "Replication lag")
    assert "links" not in lag or lag["links"] == []
    assert [s["value"] for s in lag["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None]
    assert "PostgreSQLReplicationLag" not in models["covet-postgresql"]["annotations"]["list"][0]["expr"]
    assert lint(models, config) == []


def test_cli_writes_a_users_overridden_copy(tmp_path: Path) -> None:
    override = tmp_path / "my.yaml"
    override.write_text("alerts:\n  DiskSpaceLow:\n    thresholds: {used_percent: 85}\n")
    out = tmp_path / "out"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "covet_otel.cli",
            "mixin",
            "build",
            "--config",
            str(override),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    model = json.loads((out / "grafana" / "dashboards" / "covetpy-system.json").read_text())
    disk = next(p for p in panels(model) if p["title"] == "Disk used by path")
    assert [s["value"] for s in disk["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 85]
    assert (out / "grafana" / "provisioning" / "datasources" / "covet.yaml").is_file()
    assert sorted(p.stem for p in (out / "grafana" / "dashboards").glob("*.json")) == sorted(DASHBOARD_UIDS)


def test_links_carry_variables_only_between_app_dashboards(committed: dict) -> None:
    """job=shop on the Redis server dashboard would select nothing: links into or out of a server
    dashboard keep the time range only; the tag list reaches every dashboard, so it does too."""
    servers = {"covet-postgresql", "covet-redis", "covet-collector"}
    carried = []
    for uid, model in committed.items():
        for link in model["links"]:
            target = link.get("url", "").removeprefix("/d/") or "(tag list)"
            if link["includeVars"]:
                carried.append((uid, target))
            assert link["keepTime"], (uid, link["title"])
    assert carried, "app dashboards link each other with their variables"
    assert all(u not in servers and t not in servers and t != "(tag list)" for u, t in carried), carried
