"""Every app-process metric, as served, passes `promtool check metrics` with no finding."""

from __future__ import annotations

import subprocess

from covet_fixtures import record_every_sdk_metric
from harness import tools

from covet_otel.catalogue import CATALOGUE


def _covet_families(text: str) -> str:
    """The covet_* families of an exposition: other OTel instruments in this process (an upstream
    instrumentation that an earlier test in the same worker enabled) are not covet-otel's to lint."""
    kept = []
    for line in text.splitlines():
        name = line.split()[2] if line.startswith("# ") else line.split("{")[0].split(" ")[0]
        if name.startswith("covet_"):
            kept.append(line)
    return "\n".join(kept) + "\n"


def test_promtool_check_metrics_finds_nothing(metrics) -> None:
    record_every_sdk_metric()
    text = metrics.scrape().text
    # every sdk metric is served as a family of its own, under its exact name and the Prometheus
    # type its kind maps to (a name found inside another name's line would not count)
    types = {
        line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE covet_")
    }
    kind_to_type = {
        "counter": "counter",
        "histogram": "histogram",
        "gauge": "gauge",
        "updowncounter": "gauge",
    }
    assert types == {d.name: kind_to_type[d.kind] for d in CATALOGUE if d.source == "sdk"}
    result = subprocess.run(
        [str(tools.promtool()), "check", "metrics"],
        input=_covet_families(text),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip() == "" and result.stderr.strip() == "", (
        result.stdout + result.stderr
    )
