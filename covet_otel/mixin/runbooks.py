"""The runbooks' generated parts: the "Alert details" block of each runbook and the index table.

Runbooks (``runbooks/<kebab-case-alert-name>.md``) are written by hand, except for the block between
``<!-- BEGIN GENERATED alert-details -->`` and ``<!-- END GENERATED alert-details -->``: severity,
routing, thresholds, ``for``, the dashboard link and the rule's expression come from the same
MixinConfig as the Prometheus rules, so a runbook cannot quote a threshold the rules do not use.
``write(config, out_dir)`` (called by ``covet-otel mixin build``) rewrites those blocks and the
index table in ``runbooks/README.md``; everything outside the markers is left as it is.

An alert whose runbook file does not exist yet gets one: a copy of the repository's runbook when
``out_dir`` is elsewhere, otherwise a skeleton with the nine sections to fill in (the tests fail on
the skeleton's empty sections, on purpose).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from .config import AlertDef, MixinConfig, Threshold

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS_DIR = REPO_ROOT / "runbooks"

# The CovetPy pack's runbook template, in order.
SECTIONS: tuple[str, ...] = (
    "Alert details",
    "Symptoms",
    "Impact",
    "Root causes",
    "Investigation",
    "Resolution",
    "Verification",
    "Escalation",
    "Post-incident",
)

BEGIN = "<!-- BEGIN GENERATED alert-details -->"
END = "<!-- END GENERATED alert-details -->"
INDEX_BEGIN = "<!-- BEGIN GENERATED runbook-index -->"
INDEX_END = "<!-- END GENERATED runbook-index -->"
_BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
_INDEX = re.compile(re.escape(INDEX_BEGIN) + r".*?" + re.escape(INDEX_END), re.DOTALL)

# What each severity asks of people. Routing (who is notified, how) is Alertmanager's, in alerts/;
# this is the response the runbooks promise, so it lives with them.
RESPONSE: Mapping[str, str] = {
    "critical": "pages the on-call: acknowledge within 5 minutes, mitigate within 30 minutes",
    "high": "notifies the team's alert channel and e-mail: start within 30 minutes during working "
    "hours, within 1 hour otherwise",
    "medium": "posts to the team's alert channel: handle within the working day",
    "low": "goes to the e-mail digest (muted outside working hours): review within the week",
    "none": "no response: it fires all the time by design and reaches only the dead man's switch",
}

_NOTE = (
    "<!-- Written by `covet-otel mixin build` from covet_otel/mixin/config.py (and your override "
    "file): edit those, not this block. -->"
)


class RunbookError(RuntimeError):
    """A runbook file cannot take its generated block (markers missing or duplicated)."""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _percent(value: float) -> str:
    return f"{value * 100:g} %"


def _thresholds(config: MixinConfig, alert: AlertDef) -> str:
    if alert.group == "slo":
        # the burn-rate rows of this alert's severity: fast burn pages, slow burn is a ticket
        slo = config.slo
        if alert.name.startswith("HTTPLatency"):
            target = f"{_percent(slo.latency_target)} of requests within {slo.latency_threshold_seconds:g} s"
        else:
            target = f"{_percent(slo.availability_target)} of requests without a 5xx"
        rows = [
            f"error ratio is above **{b.factor:g} ×** the budget rate over both `{b.long_window}` "
            f"and `{b.short_window}`"
            for b in slo.burn_rates
            if b.severity == alert.severity
        ]
        return f"SLO {target} over `{slo.window}`; fires when the " + "; or the ".join(rows)
    if not alert.limits:
        return "none (the expression itself is the condition)"
    return "; ".join(_quote(t, t.text) for t in alert.limits)


def _quote(t: Threshold, text: str) -> str:
    return f"`{t.name}` **{text}**" + (f" ({t.description})" if t.description else "")


def _params(alert: AlertDef) -> str:
    params = [t for t in alert.thresholds if t.role == "param"]
    return "; ".join(_quote(t, t.duration) for t in params) if params else "—"


def alert_details(config: MixinConfig, alerts: Iterable[AlertDef], expressions: Mapping[str, str]) -> str:
    """The generated block (markers included) for the alerts that share one runbook file."""
    out = [BEGIN, _NOTE, ""]
    alerts = list(alerts)
    for alert in alerts:
        if len(alerts) > 1 or alert.runbook_anchor:
            # shared runbook: one sub-section per alert, reachable by the anchor of its runbook_url
            anchor = alert.runbook_anchor or alert.name.lower()
            out += [f'<a id="{anchor}"></a>', "", f"### {alert.name}", ""]
        located = ", ".join(f"`{label}`" for label in alert.by) or "—"
        variables = ", ".join(f"`{label}`" for label in alert.link_vars) or "no variables"
        panel = f", panel {alert.panel_id}" if alert.panel_id is not None else ""
        out += [
            "| | |",
            "|---|---|",
            f"| Alert | `{alert.name}`: {_cell(alert.summary)} |",
            f"| Severity | **{alert.severity}**: {RESPONSE[alert.severity]} |",
            f"| Team | `{alert.team}` (the `team` label Alertmanager routes on) |",
            f"| Rule group | `{alert.group}` |",
            f"| Threshold | {_cell(_thresholds(config, alert))} |",
            f"| For | `{alert.for_}` |",
            f"| Window | {f'`{alert.window}`' if alert.window else '—'} |",
            f"| Lookbacks | {_cell(_params(alert))} |",
            f"| Labels that locate it | {located} |",
            f"| Dashboard | [`{alert.dashboard_uid}`{panel}]({config.dashboard_url(alert, all_values=True)}) "
            f"(the notification's `dashboard_url` sets {variables} to the alert's values) |",
            f"| Runbook URL | `{config.runbook_url(alert)}` |",
            "",
            _cell(alert.meaning),
            "",
        ]
        expr = expressions.get(alert.name)
        if expr:
            out += ["Expression:", "", "```promql", expr.strip(), "```", ""]
    out.append(END)
    return "\n".join(out)


def skeleton(alert: AlertDef) -> str:
    """A new runbook: the title, the markers and the nine section headings, to be filled in."""
    lines = [f"# {alert.name}", "", alert.meaning, ""]
    for title in SECTIONS:
        lines += [f"## {title}", ""]
        if title == "Alert details":
            lines += [BEGIN, END, ""]
    return "\n".join(lines)


def _replace_block(text: str, block: str, path: Path, begin: str, end: str, pattern: re.Pattern[str]) -> str:
    if text.count(begin) != 1 or text.count(end) != 1:
        raise RunbookError(f"{path}: needs exactly one {begin} and one {end}")
    return pattern.sub(lambda _: block, text)


def by_file(config: MixinConfig) -> dict[str, list[AlertDef]]:
    """Enabled alerts grouped by runbook file, in inventory order."""
    files: dict[str, list[AlertDef]] = {}
    for alert in config.enabled_alerts:
        files.setdefault(alert.runbook_file, []).append(alert)
    return files


def index_table(config: MixinConfig) -> str:
    rows = [
        INDEX_BEGIN,
        _NOTE,
        "",
        "| Alert | Severity | Team | Group | Threshold | For | Runbook |",
        "|---|---|---|---|---|---|---|",
    ]
    for alert in config.enabled_alerts:
        threshold = "—"
        if alert.limits:
            limit = alert.threshold()
            threshold = limit.text + (f" ({limit.description})" if limit.description else "")
        rows.append(
            f"| `{alert.name}` | {alert.severity} | {alert.team} | {alert.group} | {threshold} | "
            f"`{alert.for_}` | [{alert.runbook_path}]({alert.runbook_path}) |"
        )
    rows += ["", "What each severity asks of the people it reaches:", ""]
    rows += [f"- **{severity}**: {text}" for severity, text in RESPONSE.items()]
    rows.append(INDEX_END)
    return "\n".join(rows)


def write(config: MixinConfig, out_dir: Path, expressions: Mapping[str, str] | None = None) -> list[Path]:
    """Rewrite the generated blocks of every runbook and of the index under ``out_dir``.

    ``expressions`` maps alert names to their rule expressions; by default they are built by
    the alerts writer from the same config, exactly as the rule files carry them."""
    if expressions is None:
        from .alerts import alert_rule

        expressions = {a.name: alert_rule(config, a)["expr"] for a in config.enabled_alerts}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, alerts in by_file(config).items():
        path = out_dir / name
        if path.exists():
            text = path.read_text(encoding="utf-8")
        elif (RUNBOOKS_DIR / name).exists():
            text = (RUNBOOKS_DIR / name).read_text(encoding="utf-8")
        else:
            text = skeleton(alerts[0])
        block = alert_details(config, alerts, expressions)
        new = _replace_block(text, block, path, BEGIN, END, _BLOCK)
        if new != text or not path.exists():
            path.write_text(new, encoding="utf-8")
        written.append(path)
    index = out_dir / "README.md"
    source = index if index.exists() else RUNBOOKS_DIR / "README.md"
    if source.exists():
        text = source.read_text(encoding="utf-8")
        new = _replace_block(text, index_table(config), index, INDEX_BEGIN, INDEX_END, _INDEX)
        if new != text or not index.exists():
            index.write_text(new, encoding="utf-8")
        written.append(index)
    return written
