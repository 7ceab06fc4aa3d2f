"""docs/dashboards.md: its generated sections are those of the dashboards that ship."""

from __future__ import annotations

from covet_otel.mixin.config import DASHBOARD_UIDS, MixinConfig
from covet_otel.mixin.dashboards import docs


def test_generated_sections_are_fresh(config: MixinConfig) -> None:
    text = docs.DOC.read_text(encoding="utf-8")
    assert docs.update(text, config) == text, "run `python -m covet_otel.mixin.dashboards.docs`"


def test_one_section_per_dashboard() -> None:
    text = docs.DOC.read_text(encoding="utf-8")
    for uid in DASHBOARD_UIDS:
        assert text.count(f"(`{uid}`)\n") == 1, uid
