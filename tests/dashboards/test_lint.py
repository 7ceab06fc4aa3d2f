"""The project's dashboard lint: clean on what ships, and each rule catches a bad dashboard."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from covet_otel.mixin.config import MixinConfig
from covet_otel.mixin.dashboards.lint import RULES, lint, panels

Models = dict[str, dict[str, Any]]


def test_committed_dashboards_are_clean(committed: Models, config: MixinConfig) -> None:
    assert [str(p) for p in lint(committed, config)] == []


def _panel(models: Models, uid: str, title: str) -> dict[str, Any]:
    return next(p for p in panels(models[uid]) if p["title"] == title)


def _var(models: Models, uid: str, name: str) -> dict[str, Any]:
    return next(v for v in models[uid]["templating"]["list"] if v["name"] == name)


def _target(models: Models, uid: str, title: str, index: int = 0) -> dict[str, Any]:
    return _panel(models, uid, title)["targets"][index]


def _set_expr(uid: str, title: str, expr: str) -> Callable[[Models], None]:
    def mutate(m: Models) -> None:
        _target(m, uid, title)["expr"] = expr

    return mutate


def _drop_dashboard(m: Models) -> None:
    del m["covetpy-cache"]


def _drop_panels(m: Models) -> None:
    m["covetpy-db-pool"]["panels"] = m["covetpy-db-pool"]["panels"][:5]


def _untag(m: Models) -> None:
    m["covet-redis"]["tags"] = []


def _old_schema(m: Models) -> None:
    m["covet-http"]["schemaVersion"] = 36


def _no_refresh(m: Models) -> None:
    m["covet-http"]["refresh"] = ""


def _fixed_datasource(m: Models) -> None:
    _panel(m, "covet-http", "Requests per second by route")["datasource"] = {
        "type": "prometheus",
        "uid": "P1809F7CD0C75ACF3",
    }


def _no_datasource_var(m: Models) -> None:
    m["covet-http"]["templating"]["list"] = [
        v for v in m["covet-http"]["templating"]["list"] if v["name"] != "datasource"
    ]


def _single_value_job(m: Models) -> None:
    _var(m, "covetpy-system", "job")["multi"] = False


def _no_instance_var(m: Models) -> None:
    m["covetpy-system"]["templating"]["list"] = [
        v for v in m["covetpy-system"]["templating"]["list"] if v["name"] != "instance"
    ]


def _unused_var(m: Models) -> None:
    for p in panels(m["covetpy-cache"]):
        for t in p["targets"]:
            t["expr"] = t["expr"].replace(', command=~"$command"', "")


def _no_unit(m: Models) -> None:
    del _panel(m, "covetpy-system", "Load average")["fieldConfig"]["defaults"]["unit"]


def _no_description(m: Models) -> None:
    _panel(m, "covetpy-system", "Load average")["description"] = ""


def _vague_description(m: Models) -> None:
    _panel(m, "covetpy-system", "Load average")["description"] = "The load. Good: low."


def _no_title(m: Models) -> None:
    _panel(m, "covetpy-system", "Load average")["title"] = " "


def _threshold_off(m: Models) -> None:
    steps = _panel(m, "covetpy-query-perf", "Query latency p95 by operation")["fieldConfig"]["defaults"][
        "thresholds"
    ]
    steps["steps"][1]["value"] = 0.75


def _runbook_url_wrong(m: Models) -> None:
    _panel(m, "covetpy-query-perf", "Query latency p95 by operation")["links"][0]["url"] = (
        "https://example.com/x.md"
    )


def _runbook_unknown_alert(m: Models) -> None:
    _panel(m, "covet-redis", "Connected clients")["links"] = [
        {"title": "Runbook: RedisOnFire", "type": "link", "url": "https://example.com/r.md"}
    ]


def _alert_without_panel(m: Models) -> None:
    _panel(m, "covet-redis", "Rejected connections")["links"] = []


def _broken_link(m: Models) -> None:
    m["covet-overview"]["links"][1]["url"] = "/d/covet-nonexistent"


def _no_tag_link(m: Models) -> None:
    m["covet-redis"]["links"] = [link for link in m["covet-redis"]["links"] if link["type"] != "dashboards"]


def _alert_var_missing(m: Models) -> None:
    m["covet-http"]["templating"]["list"] = [
        v for v in m["covet-http"]["templating"]["list"] if v["name"] != "route"
    ]
    for p in panels(m["covet-http"]):
        for t in p["targets"]:
            t["expr"] = t["expr"].replace(', route=~"$route"', "")


def _duplicate_id(m: Models) -> None:
    m["covetpy-backup"]["panels"][1]["id"] = m["covetpy-backup"]["panels"][0]["id"]


def _no_annotation(m: Models) -> None:
    m["covetpy-backup"]["annotations"]["list"] = []


BAD: list[tuple[str, Callable[[Models], None], str]] = [
    ("uids", _drop_dashboard, "covetpy-cache: dashboard missing"),
    ("uids", _drop_panels, "5 panels, the pack's dashboard had 8"),
    ("uids", _untag, "not tagged 'covet'"),
    ("schema", _old_schema, "schemaVersion 36, current is"),
    ("schema", _no_refresh, "refresh ''"),
    ("datasource", _fixed_datasource, "is not the templated ${datasource}"),
    ("datasource", _no_datasource_var, "no 'datasource' variable"),
    ("variables", _single_value_job, "variable job: must be multi-value with All"),
    ("variables", _no_instance_var, "no query variable 'instance'"),
    (
        "target-filters",
        _set_expr(
            "covetpy-system",
            "Load average",
            'max by (instance, period) (covet_system_load_average{job=~"$job"})',
        ),
        'covet_system_load_average is not filtered by instance=~"$instance"',
    ),
    ("target-filters", _unused_var, "variable command: not used by any panel query"),
    (
        "target-filters",
        _set_expr(
            "covetpy-db-pool",
            "Pool health",
            'min by (pool) (covet_db_pool_health_status{job=~"$job", instance=~"$instance"})',
        ),
        'covet_db_pool_health_status is not filtered by pool=~"$pool"',
    ),
    (
        "rate-interval",
        _set_expr(
            "covet-http",
            "Unhandled exceptions per second by route",
            "sum by (route) (rate(covet_http_exceptions_total"
            '{job=~"$job", instance=~"$instance", route=~"$route"}[5m]))',
        ),
        "rate(covet_http_exceptions_total[0:05:00]) must use $__rate_interval",
    ),
    (
        "promql",
        _set_expr(
            "covet-redis",
            "Connected clients",
            'max by (instance) (redis_connected_clients{job=~"$job", instance=~"$instance"})',
        ),
        "redis_connected_clients is not in the covet_otel catalogue",
    ),
    (
        "promql",
        _set_expr(
            "covet-redis",
            "Connected clients",
            'max by (instance) (covet_redis_clients_connected{job=~"$job", instance=~"$instance", db="0"})',
        ),
        "covet_redis_clients_connected has no label 'db'",
    ),
    (
        "promql",
        _set_expr(
            "covet-redis", "Connected clients", 'max by (instance) (covet_redis_clients_connected{job=~"$job"'
        ),
        "does not parse as PromQL",
    ),
    (
        "promql",
        _set_expr(
            "covet-redis",
            "Connected clients",
            "max by (instance) (covet_redis_clients_connected"
            '{job=~"$job", instance=~"$instance", x=~"$nosuchvar"})',
        ),
        "variable $nosuchvar has no value",
    ),
    ("panel-text", _no_unit, "'Load average': no unit"),
    ("panel-text", _no_description, "'Load average': no description"),
    ("panel-text", _vague_description, "description names none of its metrics ['covet_system_load_average']"),
    ("panel-text", _no_title, "no title"),
    (
        "thresholds",
        _threshold_off,
        "DatabaseHighQueryLatency fires at p95_seconds=0.5 (seconds); the panel's thresholds are [0.75]",
    ),
    ("thresholds", _runbook_url_wrong, "runbook link 'https://example.com/x.md', the definition's is"),
    ("thresholds", _runbook_unknown_alert, "runbook link to unknown alert 'RedisOnFire'"),
    ("thresholds", _alert_without_panel, "no panel links the runbook of RedisRejectedConnections"),
    ("links", _broken_link, "to unknown dashboard 'covet-nonexistent'"),
    ("links", _no_tag_link, "no link to the other dashboards by tag 'covet'"),
    ("links", _alert_var_missing, "HighHTTPErrorRate passes var-route, the dashboard has no such variable"),
    ("panel-ids", _duplicate_id, "panel id 1 used twice"),
    ("annotations", _no_annotation, "no enabled annotation of firing ALERTS"),
]


@pytest.mark.parametrize(
    ("rule", "mutate", "expected"), BAD, ids=[f"{r}-{m.__name__.strip('_')}" for r, m, _ in BAD]
)
def test_rule_catches_a_bad_dashboard(
    committed: Models, config: MixinConfig, rule: str, mutate: Callable[[Models], None], expected: str
) -> None:
    models = copy.deepcopy(committed)
    mutate(models)
    found = [str(p) for p in lint(models, config, rules=(rule,))]
    assert any(expected in p for p in found), found


def test_every_rule_has_a_bad_dashboard() -> None:
    assert {rule for rule, _, _ in BAD} == set(RULES)
