"""Runbooks against the mixin definition: one per alert, URLs that resolve, the nine sections with
content, fresh generated blocks, working links. No servers needed."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from covet_otel.mixin import runbooks
from covet_otel.mixin.config import DASHBOARD_UIDS, load_config

from .markdown import SECTIONS, anchors, blocks, headings, links, runbook_files, sections

DASHBOARDS_DIR = runbooks.REPO_ROOT / "grafana" / "dashboards"
CONFIG = load_config()
BY_FILE = runbooks.by_file(CONFIG)
FILES = runbook_files()
RUNBOOK_IDS = [p.name for p in FILES]

# Sections a responder reads under pressure: each needs real content, not a heading and a line.
MIN_LINES = {
    "Symptoms": 4,
    "Impact": 3,
    "Root causes": 4,
    "Investigation": 15,
    "Resolution": 8,
    "Verification": 3,
    "Escalation": 3,
    "Post-incident": 3,
}
# A phone number (7+ digits with separators) must never be invented in an escalation section.
PHONE = re.compile(r"\+?\d[\d ()./-]{6,}\d")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_every_alert_has_a_runbook_and_every_runbook_an_alert() -> None:
    expected = set(BY_FILE)
    present = {p.name for p in FILES}
    assert expected - present == set(), "alerts without a runbook"
    assert present - expected == set(), "runbooks without an alert"
    assert len(CONFIG.enabled_alerts) >= 35


@pytest.mark.parametrize("alert", CONFIG.enabled_alerts, ids=lambda a: a.name)
def test_runbook_url_resolves_to_file_and_anchor(alert: object) -> None:
    url = CONFIG.runbook_url(alert)  # type: ignore[arg-type]
    assert url.startswith(CONFIG.runbook_base_url)
    relative = url[len(CONFIG.runbook_base_url) :]
    name, _, anchor = relative.partition("#")
    path = runbooks.RUNBOOKS_DIR / name
    assert path.is_file(), url
    if anchor:
        assert anchor in anchors(_text(path)), f"{url}: no anchor #{anchor} in {name}"


@pytest.mark.parametrize("path", FILES, ids=RUNBOOK_IDS)
def test_sections_in_order_and_not_stubs(path: Path) -> None:
    text = _text(path)
    found = [title for level, title in headings(text) if level == 2]
    assert found == list(SECTIONS), f"{path.name}: level-2 headings {found}"
    body = sections(text)
    for title, minimum in MIN_LINES.items():
        lines = [line for line in body[title].splitlines() if line.strip()]
        assert len(lines) >= minimum, f"{path.name}: section {title!r} has {len(lines)} lines (< {minimum})"
    assert re.search(r"\*\*Users\*\*", body["Impact"]), f"{path.name}: Impact names no user impact"
    assert re.search(r"\*\*Business\*\*", body["Impact"]), f"{path.name}: Impact names no business impact"
    assert re.search(r"\*\*Data\*\*", body["Impact"]), f"{path.name}: Impact names no data impact"
    resolution = [title for level, title in headings(body["Resolution"]) if level == 3]
    assert resolution == ["Immediate", "Long-term"], f"{path.name}: Resolution sub-sections {resolution}"
    investigation_blocks = [b for b in blocks(path) if b.lang in ("promql", "sql", "console", "sh")]
    assert len(investigation_blocks) >= 3, f"{path.name}: fewer than 3 copy-paste blocks"


@pytest.mark.parametrize("path", FILES, ids=RUNBOOK_IDS)
def test_length_of_the_pack_runbooks(path: Path) -> None:
    """150 to 250 lines, as the CovetPy pack's runbooks: at least 150 in all, at most 250 written by
    hand (the generated block of a runbook shared by several alerts grows with them)."""
    text = _text(path)
    generated = re.search(re.escape(runbooks.BEGIN) + r".*?" + re.escape(runbooks.END), text, re.DOTALL)
    assert generated is not None
    total = len(text.splitlines())
    by_hand = total - len(generated.group(0).splitlines())
    assert total >= 150, f"{path.name}: {total} lines"
    assert by_hand <= 250, f"{path.name}: {by_hand} lines written by hand"


@pytest.mark.parametrize("path", FILES, ids=RUNBOOK_IDS)
def test_title_names_the_alerts(path: Path) -> None:
    text = _text(path)
    title = text.splitlines()[0]
    assert title.startswith("# "), f"{path.name}: first line is not a title"
    alerts = BY_FILE[path.name]
    if len(alerts) == 1:
        assert title == f"# {alerts[0].name}"
    body = sections(text)["Alert details"]
    for alert in alerts:
        assert f"`{alert.name}`" in body, f"{path.name}: generated block lacks {alert.name}"


@pytest.mark.parametrize("path", FILES, ids=RUNBOOK_IDS)
def test_escalation_names_roles_and_a_placeholder_never_numbers(path: Path) -> None:
    escalation = sections(_text(path))["Escalation"]
    assert "<fill in:" in escalation, f"{path.name}: no contacts placeholder"
    assert re.search(r"on-call|owners|commander", escalation), f"{path.name}: no role named"
    assert not PHONE.findall(escalation), f"{path.name}: looks like a phone number"
    assert "@" not in escalation, f"{path.name}: looks like an e-mail address"


def test_generated_blocks_and_index_are_fresh(tmp_path: Path) -> None:
    """Regenerating from the default definition changes no committed byte."""
    copy = tmp_path / "runbooks"
    shutil.copytree(runbooks.RUNBOOKS_DIR, copy)
    runbooks.write(CONFIG, copy)
    stale = [p.name for p in sorted(copy.glob("*.md")) if _text(p) != _text(runbooks.RUNBOOKS_DIR / p.name)]
    assert stale == [], "stale generated blocks: run `covet-otel mixin build`"


def test_generated_block_follows_an_override(tmp_path: Path) -> None:
    """A user's override reaches the runbook: threshold, `for`, URLs; the hand-written text stays."""
    override = tmp_path / "override.yaml"
    override.write_text(
        "grafana_url: https://grafana.example.com\n"
        "runbook_base_url: https://wiki.example.com/runbooks/\n"
        "alerts:\n  DiskSpaceLow:\n    for: 20m\n    thresholds: {used_percent: 85}\n",
        encoding="utf-8",
    )
    config = load_config(override)
    copy = tmp_path / "runbooks"
    shutil.copytree(runbooks.RUNBOOKS_DIR, copy)
    runbooks.write(config, copy)
    text = _text(copy / "disk-space-low.md")
    details = sections(text)["Alert details"]
    assert "`used_percent` **85 %**" in details
    assert "| For | `20m` |" in details
    assert "(https://grafana.example.com/d/covetpy-system?var-job=$__all&var-instance=$__all" in details
    assert "`https://wiki.example.com/runbooks/disk-space-low.md`" in details
    assert "> 85" in details or ">= 85" in details, "the expression quotes the new threshold"
    original = _text(runbooks.RUNBOOKS_DIR / "disk-space-low.md")
    assert sections(text)["Investigation"] == sections(original)["Investigation"]


def test_missing_runbook_gets_a_copy_or_a_skeleton(tmp_path: Path) -> None:
    runbooks.write(CONFIG, tmp_path)
    copied = _text(tmp_path / "disk-space-low.md")
    assert (
        sections(copied)["Investigation"]
        == sections(_text(runbooks.RUNBOOKS_DIR / "disk-space-low.md"))["Investigation"]
    )
    alert = CONFIG.alert("DiskSpaceLow")
    skeleton = runbooks.skeleton(alert)
    assert [t for level, t in headings(skeleton) if level == 2] == list(SECTIONS)


def test_block_without_markers_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "disk-space-low.md").write_text("# DiskSpaceLow\n\nno markers\n", encoding="utf-8")
    with pytest.raises(runbooks.RunbookError, match=r"disk-space-low\.md: needs exactly one"):
        runbooks.write(CONFIG, tmp_path)


@pytest.mark.parametrize(
    "path", [*FILES, runbooks.RUNBOOKS_DIR / "README.md"], ids=[*RUNBOOK_IDS, "README.md"]
)
def test_relative_links_resolve(path: Path) -> None:
    for line, _label, target in links(_text(path)):
        if re.match(r"^[a-z]+://", target):
            continue
        name, _, anchor = target.partition("#")
        linked = (path.parent / name).resolve() if name else path
        assert linked.is_file(), f"{path.name}:{line}: broken link {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(_text(linked)), f"{path.name}:{line}: no anchor #{anchor}"


@pytest.mark.parametrize("path", FILES, ids=RUNBOOK_IDS)
def test_code_blocks_have_a_known_language(path: Path) -> None:
    for block in blocks(path):
        assert block.lang in ("promql", "sql", "console", "sh", "text"), f"{block.where}: ```{block.lang}"


def _variables() -> dict[str, set[str]]:
    """Template variable names of every committed dashboard, by UID."""
    found: dict[str, set[str]] = {}
    for path in sorted(DASHBOARDS_DIR.rglob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        if "uid" in dashboard:
            found[dashboard["uid"]] = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    return found


def _panels() -> dict[str, dict[str, int]]:
    """Panel title -> id of every committed dashboard, by UID (rows' nested panels included)."""
    found: dict[str, dict[str, int]] = {}

    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    for path in sorted(DASHBOARDS_DIR.rglob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        if "uid" in dashboard:
            panels = walk(dashboard.get("panels", []))
            found[dashboard["uid"]] = {p.get("title", ""): p.get("id", 0) for p in panels}
    return found


PANELS = _panels()
VARIABLES = _variables()
# "`covetpy-db-pool` › *Pool utilisation*": how a runbook names the panel showing a query's data
PANEL_REFERENCE = re.compile(r"`([a-z-]+)` ›\s+\*([^*]+)\*")


def test_every_dashboard_is_committed() -> None:
    assert set(PANELS) == set(DASHBOARD_UIDS)


@pytest.mark.parametrize("path", FILES, ids=RUNBOOK_IDS)
def test_dashboard_links_and_panels_exist(path: Path) -> None:
    text = _text(path)
    for uid, query in re.findall(r"/d/([A-Za-z0-9_-]+)(\?[^)\s]*)?", text):
        assert uid in PANELS, f"{path.name}: unknown dashboard UID {uid}"
        for variable in re.findall(r"var-([A-Za-z0-9_]+)=", query or ""):
            assert variable in VARIABLES[uid], f"{path.name}: {uid} has no variable {variable}"
        panel = re.search(r"viewPanel=(\d+)", query)
        if panel:
            panel_id = int(panel.group(1))
            assert panel_id in PANELS[uid].values(), f"{path.name}: no panel {panel_id} in {uid}"
    references = PANEL_REFERENCE.findall(text)
    for uid, title in references:
        title = " ".join(title.split())
        assert uid in PANELS, f"{path.name}: unknown dashboard UID {uid}"
        assert title in PANELS[uid], f"{path.name}: no panel {title!r} in {uid}: {sorted(PANELS[uid])}"
    assert references, f"{path.name}: names no dashboard panel"


def test_shipped_rules_runbook_urls_resolve() -> None:
    """The runbook_url annotation of every alert in the committed rule files names a runbook file and
    anchor that exist, and every alert of the definition is there."""
    import yaml

    seen = set()
    for path in sorted((runbooks.REPO_ROOT / "alerts").rglob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                url = rule["annotations"]["runbook_url"]
                assert url.startswith(CONFIG.runbook_base_url), url
                name, _, anchor = url[len(CONFIG.runbook_base_url) :].partition("#")
                target = runbooks.RUNBOOKS_DIR / name
                assert target.is_file(), f"{rule['alert']}: {url}"
                if anchor:
                    assert anchor in anchors(_text(target)), f"{rule['alert']}: {url}"
                seen.add(rule["alert"])
    assert seen == {a.name for a in CONFIG.enabled_alerts}


STEP_START = re.compile(r"^(\d+\. |- |#{2,3} )")


@pytest.mark.parametrize("path", FILES, ids=RUNBOOK_IDS)
def test_every_query_names_its_panel(path: Path) -> None:
    """Each hand-written PromQL block's step names the dashboard panel that shows the same data, or
    says it is on no dashboard."""
    lines = _text(path).splitlines()
    end = next(i for i, line in enumerate(lines) if line == runbooks.END)
    for block in blocks(path):
        if block.lang != "promql" or block.line <= end:
            continue
        i = block.line - 2
        step: list[str] = []
        while i >= 0 and not STEP_START.match(lines[i]):
            step.append(lines[i])
            i -= 1
        step.append(lines[i])
        text = "\n".join(reversed(step))
        named = PANEL_REFERENCE.search(text) or "not on a dashboard" in text.lower()
        assert named, f"{block.where}: no panel named"


def _panel_metrics() -> dict[tuple[str, str], set[str]]:
    """Metric names each committed panel queries, by (UID, title)."""
    from .test_promql import metric_names

    grafana_variable = re.compile(r"\$\{?(\w+)\}?")
    found: dict[tuple[str, str], set[str]] = {}
    for path in sorted(DASHBOARDS_DIR.rglob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        stack = list(dashboard.get("panels", []))
        while stack:
            panel = stack.pop()
            stack += panel.get("panels", [])
            names: set[str] = set()
            for target in panel.get("targets", []):
                expr = target.get("expr")
                if expr:
                    # Grafana's interval variables to a duration, the others to a regex matching all
                    expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", expr)
                    names |= metric_names(grafana_variable.sub(".*", expr))
            found[(dashboard["uid"], panel.get("title", ""))] = names
    return found


def test_each_named_panel_shows_the_query_s_metrics() -> None:
    """The panel a query's step names queries at least one of the same metrics (recording rules
    count as the metrics they are built from only when named themselves)."""
    from .test_promql import metric_names

    panel_metrics = _panel_metrics()
    mismatches = []
    for path in FILES:
        lines = _text(path).splitlines()
        end = next(i for i, line in enumerate(lines) if line == runbooks.END)
        for block in blocks(path):
            if block.lang != "promql" or block.line <= end:
                continue
            i = block.line - 2
            step: list[str] = []
            while i >= 0 and not STEP_START.match(lines[i]):
                step.append(lines[i])
                i -= 1
            step.append(lines[i])
            text = "\n".join(reversed(step))
            references = list(PANEL_REFERENCE.finditer(text))
            if not references or text.lower().rfind("not on a dashboard") > references[-1].start():
                continue
            uid, title = references[-1].groups()  # the reference nearest to the block
            shown = panel_metrics[(uid, " ".join(title.split()))]
            if not metric_names(block.text) & shown:
                mismatches.append(f"{block.where}: {uid} › {' '.join(title.split())}")
    assert mismatches == [], "\n".join(mismatches)
