"""The generated blocks of docs/alerts.md: the alert table and the recording rules, from the same
definition and expressions as the rule files."""

from __future__ import annotations

import re
from pathlib import Path

from .alerts import alert_rule, rule_files
from .config import MixinConfig

BEGIN = "<!-- BEGIN GENERATED: covet-otel mixin build (alert table) -->"
END = "<!-- END GENERATED: alert table -->"
_BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return "`" + _cell(text) + "`"


def table(config: MixinConfig) -> str:
    lines = [
        BEGIN,
        "",
        "| alert | group | severity | team | for | threshold | expression | what it means | runbook "
        "| dashboard |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in config.enabled_alerts:
        rule = alert_rule(config, a)
        limits = ", ".join(f"{t.name} {t.text}" for t in a.thresholds) or "—"
        if a.group == "slo":
            target = config.slo.availability_target if "Availability" in a.name else config.slo.latency_target
            rows = [b for b in config.slo.burn_rates if b.severity == a.severity]
            limits = f"SLO {target * 100:g} %; " + "; ".join(
                f"{b.factor:g}x over {b.long_window} and {b.short_window}" for b in rows
            )
        lines.append(
            f"| {a.name} | {a.group} | {a.severity} | {a.team} | {a.for_} | {_cell(limits)} "
            f"| {_code(rule['expr'])} | {_cell(a.meaning)} "
            f"| [{a.runbook_path}](../runbooks/{a.runbook_path}) | `{a.dashboard_uid}` |"
        )
    lines += ["", "Recording rules:", "", "| rule | labels | expression |", "|---|---|---|"]
    for content in rule_files(config).values():
        for group in content["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    labels = ", ".join(f'{k}="{v}"' for k, v in rule.get("labels", {}).items()) or "—"
                    lines.append(f"| `{rule['record']}` | {_cell(labels)} | {_code(rule['expr'])} |")
    lines += ["", END]
    return "\n".join(lines)


def update(config: MixinConfig, path: Path) -> bool:
    """Replace the generated block of `path`; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    if not _BLOCK.search(text):
        raise ValueError(f"{path}: no generated block ({BEGIN} ... {END})")
    new = _BLOCK.sub(lambda _: table(config), text)
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False
