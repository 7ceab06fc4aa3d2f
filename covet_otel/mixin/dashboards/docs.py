"""The generated part of docs/dashboards.md: one section per dashboard (what it answers, its
variables, its panels, the alerts that link to it), rendered from the built dashboards and the
definition, between two marker lines. `python -m covet_otel.mixin.dashboards.docs` rewrites it;
tests/dashboards/test_docs.py fails while it is stale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import MixinConfig, load_config
from . import build_dashboards
from ._kit import RUNBOOK_LINK_PREFIX

DOC = Path(__file__).resolve().parents[3] / "docs" / "dashboards.md"
BEGIN = "<!-- BEGIN GENERATED: covet-otel dashboards (python -m covet_otel.mixin.dashboards.docs) -->"
END = "<!-- END GENERATED -->"


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + ("." if dot else "")


def _section(model: dict[str, Any], config: MixinConfig) -> list[str]:
    uid = model["uid"]
    lines = [f"### {model['title'].removeprefix('Covet / ')} (`{uid}`)", "", model["description"], ""]
    extra_vars = [
        f"`{v['name']}`"
        for v in model["templating"]["list"]
        if v["type"] == "query" and v["name"] not in ("job", "instance")
    ]
    lines.append(
        "Variables: `datasource`, `job`, `instance`"
        + (", " + ", ".join(extra_vars) if extra_vars else "")
        + f". Default range: last {model['time']['from'].removeprefix('now-')}, refresh {model['refresh']}."
    )
    lines += ["", "| # | Panel | Reads, and what good looks like | Alert |", "|---|---|---|---|"]
    for p in model["panels"]:
        alerts = [
            link["title"].removeprefix(RUNBOOK_LINK_PREFIX)
            for link in p.get("links", [])
            if link["title"].startswith(RUNBOOK_LINK_PREFIX)
        ]
        desc = p["description"].replace("|", "\\|")
        lines.append(f"| {p['id']} | {p['title']} | {desc} | {', '.join(alerts)} |")
    linking = [a.name for a in config.enabled_alerts if a.dashboard_uid == uid]
    lines += [
        "",
        "Alerts whose `dashboard_url` opens this dashboard: " + (", ".join(linking) or "none") + ".",
        "",
    ]
    return lines


def render(config: MixinConfig) -> str:
    models = build_dashboards(config)
    lines = [BEGIN, ""]
    for model in models.values():
        lines += _section(model, config)
    lines.append(END)
    return "\n".join(lines)


def update(text: str, config: MixinConfig) -> str:
    """`text` (docs/dashboards.md) with its generated block replaced."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"{DOC}: the generated block's marker lines are missing")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + render(config) + tail


def main() -> int:
    # the committed page documents the defaults
    DOC.write_text(update(DOC.read_text(encoding="utf-8"), load_config()), encoding="utf-8")
    print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
