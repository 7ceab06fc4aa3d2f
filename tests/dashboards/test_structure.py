"""Strict structural validation of every dashboard against Grafana's own schema types
(tools/dashboard-check on grafana-foundation-sdk/go): valid as shipped, and the checker rejects
unknown fields, wrong types, unknown panel types and untyped queries."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHECKER_SRC, DASHBOARDS

Model = dict[str, Any]


def run_check(binary: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *map(str, paths)], capture_output=True, text=True, timeout=60)


def test_shipped_dashboards_are_valid(dashboard_check: Path) -> None:
    run = run_check(dashboard_check, DASHBOARDS)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"{len(list(DASHBOARDS.glob('*.json')))} dashboard(s) checked, 0 invalid"


def test_go_module_requires_the_pinned_sdk() -> None:
    from harness import tools

    go_mod = (CHECKER_SRC / "go.mod").read_text()
    pinned = tools.version("GRAFANA_FOUNDATION_SDK_GO_VERSION")
    assert f"github.com/grafana/grafana-foundation-sdk/go {pinned}" in go_mod


def _first_panel(m: Model) -> Model:
    return m["panels"][0]


def _unknown_top(m: Model) -> None:
    m["graphTooltips"] = 1


def _unknown_panel_field(m: Model) -> None:
    _first_panel(m)["decription"] = "typo"


def _wrong_type_gridpos(m: Model) -> None:
    _first_panel(m)["gridPos"]["w"] = "12"


def _unknown_panel_type(m: Model) -> None:
    _first_panel(m)["type"] = "graph"  # removed from Grafana; its options would go unchecked


def _untyped_query(m: Model) -> None:
    del _first_panel(m)["targets"][0]["datasource"]


def _unknown_query_field(m: Model) -> None:
    _first_panel(m)["targets"][0]["exprr"] = "up"


def _unknown_option(m: Model) -> None:
    _first_panel(m)["options"]["colourMode"] = "value"


def _unknown_defaults_field(m: Model) -> None:
    _first_panel(m)["fieldConfig"]["defaults"]["unitt"] = "s"


def _threshold_as_string(m: Model) -> None:
    _first_panel(m)["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] = "1"


def _variable_wrong_type(m: Model) -> None:
    m["templating"]["list"][1]["multi"] = "true"


def _link_unknown_field(m: Model) -> None:
    m["links"][0]["tagz"] = ["covet"]


BAD: list[tuple[Callable[[Model], None], str]] = [
    (_unknown_top, "Dashboard: unexpected field 'graphTooltips'"),
    (_unknown_panel_field, "unexpected field 'decription'"),
    (_wrong_type_gridpos, "panels[0].gridPos.w: json: cannot unmarshal string"),
    (_unknown_panel_type, 'panels[0]: unknown panel type "graph"'),
    (_untyped_query, "panels[0].targets[0]: query of unknown type"),
    (_unknown_query_field, "unexpected field 'exprr'"),
    (_unknown_option, "unexpected field 'colourMode'"),
    (_unknown_defaults_field, "unexpected field 'unitt'"),
    (_threshold_as_string, "cannot unmarshal string into Go struct field Threshold"),
    (
        _variable_wrong_type,
        "templating.list[1].multi: json: cannot unmarshal string into Go value of type bool",
    ),
    (_link_unknown_field, "unexpected field 'tagz'"),
]


@pytest.mark.parametrize(("mutate", "expected"), BAD, ids=[m.__name__.strip("_") for m, _ in BAD])
def test_checker_rejects(
    dashboard_check: Path, tmp_path: Path, mutate: Callable[[Model], None], expected: str
) -> None:
    model = copy.deepcopy(json.loads((DASHBOARDS / "covetpy-db-pool.json").read_text()))
    mutate(model)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(model))
    run = run_check(dashboard_check, path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert expected in run.stderr, run.stderr
    assert "1 dashboard(s) checked, 1 invalid" in run.stdout
