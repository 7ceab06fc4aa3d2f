"""Every panel shows data on a healthy service: the whole native stack (instrumented app with traffic
in every metric group, a backup and a migration run, the collector with the Redis, host and
PostgreSQL receivers, Prometheus with the shipped rules) answers every panel query the way Grafana
would send it (its variables resolved from Prometheus, All selected, the dashboard's default time
range and Grafana's step and $__rate_interval).

A panel returns data when one of its queries returns a series with a finite value. The few panels
empty by design are listed in EMPTY_BY_DESIGN with their reason; the list must match exactly."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from covet_otel.mixin.config import duration_seconds
from covet_otel.mixin.dashboards import provisioning
from covet_otel.mixin.dashboards.lint import panels, query_text, variables
from covet_otel.mixin.dashboards.promql import substitute

pytestmark = pytest.mark.slow

# (uid, panel title) -> why it is empty on a healthy stack
# None since the stack's Redis runs with maxmemory (as docker-compose.yml does): the ratio panel
# has a limit to divide by. A panel listed here needs its reason.
EMPTY_BY_DESIGN: dict[tuple[str, str], str] = {}

SCRAPE = duration_seconds(provisioning.SCRAPE_INTERVAL)  # the datasource's timeInterval
MAX_DATA_POINTS = 1000  # a full-width panel on a 1920 px screen
# the SLO budget rules run every 5 minutes; a first run before the ratio rules beneath them had data
# yields nothing, so their data can take two runs after the stack starts
BUDGET_GROUP_WAIT = 660


def grafana_interval(range_seconds: float) -> float:
    """$__interval: range / max data points, never below the datasource's scrape interval."""
    return max(SCRAPE, math.ceil(range_seconds / MAX_DATA_POINTS))


def rate_interval(interval: float) -> float:
    """Grafana's $__rate_interval: max($__interval + scrape interval, 4 x scrape interval)."""
    return max(interval + SCRAPE, 4 * SCRAPE)


def _has_value(result: list[dict[str, Any]]) -> bool:
    for series in result:
        points = series.get("values") or ([series["value"]] if "value" in series else [])
        if any(math.isfinite(float(v)) for _, v in points):
            return True
    return False


@dataclass
class DashboardRun:
    uid: str
    values: dict[str, Any] = field(default_factory=dict)
    empty_variables: list[str] = field(default_factory=list)
    panels: dict[str, bool] = field(default_factory=dict)  # title -> has data
    queries: int = 0
    errors: list[str] = field(default_factory=list)


def run_dashboard(prom: Any, model: dict[str, Any], now: float) -> DashboardRun:
    run = DashboardRun(model["uid"])
    rng = duration_seconds(model["time"]["from"].removeprefix("now-"))
    start, end = now - rng, now
    interval = grafana_interval(rng)
    run.values = {
        "__interval": f"{interval:g}s",
        "__rate_interval": f"{rate_interval(interval):g}s",
        "__range": f"{rng:g}s",
        "__range_s": f"{rng:g}",
        "__interval_ms": f"{interval * 1000:g}",
        "datasource": provisioning.PROMETHEUS_UID,
    }
    # variables in order, each resolved with the ones before it (instance follows job), All selected
    for name, var in variables(model).items():
        if var["type"] != "query":
            continue
        inner, label = query_text(var)[len("label_values(") : -1].rsplit(",", 1)
        found = prom.api_get(
            "/api/v1/series", {"match[]": substitute(inner, run.values), "start": start, "end": end}
        )
        values = sorted({s[label.strip()] for s in found if label.strip() in s})
        if not values:
            run.empty_variables.append(name)
        run.values[name] = values or [""]
    for panel in panels(model):
        has_data = False
        for target in panel["targets"]:
            expr = substitute(target["expr"], run.values)
            run.queries += 1
            try:
                if target.get("instant"):
                    result = prom.api_get("/api/v1/query", {"query": expr, "time": end})["result"]
                else:
                    result = prom.api_get(
                        "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": interval}
                    )["result"]
            except Exception as exc:  # the harness raises on a non-2xx answer
                run.errors.append(f"{panel['title']} [{target['refId']}]: {exc}")
                continue
            has_data = has_data or _has_value(result)
        run.panels[panel["title"]] = has_data
    return run


def _wait_for_budget_rules(prom: Any) -> None:
    deadline = time.monotonic() + BUDGET_GROUP_WAIT
    while time.monotonic() < deadline:
        groups = prom.api_get("/api/v1/rules", {"type": "record"})["groups"]
        budget = {
            r["name"] for g in groups for r in g["rules"] if r["name"].endswith("_budget_remaining_ratio")
        }
        if budget and all(prom.query(name) for name in budget):
            return
        time.sleep(2)
    pytest.fail(f"the SLO budget recording rules gave no data within {BUDGET_GROUP_WAIT}s")


def test_every_panel_returns_data(stack: Any, committed: dict[str, dict[str, Any]]) -> None:
    prom = stack.prometheus
    _wait_for_budget_rules(prom)
    time.sleep(2 * SCRAPE)  # a few samples of the latest scrapes inside every $__rate_interval

    started = time.monotonic()
    now = time.time()
    runs = [run_dashboard(prom, model, now) for model in committed.values()]
    elapsed = time.monotonic() - started

    errors = [f"{r.uid}: {e}" for r in runs for e in r.errors]
    assert errors == []
    empty_vars = [f"{r.uid}: ${v}" for r in runs for v in r.empty_variables]
    assert empty_vars == [], "variables with no values (their panels filter everything out)"

    empty = {(r.uid, title) for r in runs for title, ok in r.panels.items() if not ok}
    total = sum(len(r.panels) for r in runs)
    queries = sum(r.queries for r in runs)
    print(
        f"\n{total} panels, {queries} queries in {elapsed:.1f}s; "
        f"{total - len(empty)} with data ({100 * (total - len(empty)) / total:.1f} %), "
        f"empty by design: {sorted(empty)}"
    )
    assert empty == set(EMPTY_BY_DESIGN), {
        "empty, not listed": sorted(empty - set(EMPTY_BY_DESIGN)),
        "listed, has data": sorted(set(EMPTY_BY_DESIGN) - empty),
    }


def test_counters_that_did_not_move_show_zero(stack: Any, committed: dict[str, dict[str, Any]]) -> None:
    """On a healthy stack no acquire timed out and nothing leaked: those panels show 0 per pool,
    not "No data" and not an extra label-less series beside the real ones."""
    prom = stack.prometheus
    now = time.time()
    run = run_dashboard(prom, committed["covetpy-db-pool"], now)
    pools = run.values["pool"]
    assert pools, "the app reports its pool"
    for title in ("Acquire timeouts per second", "Leaked connections"):
        (panel,) = [p for p in panels(committed["covetpy-db-pool"]) if p["title"] == title]
        expr = substitute(panel["targets"][0]["expr"], run.values)
        result = prom.api_get("/api/v1/query", {"query": expr, "time": now})["result"]
        assert sorted(s["metric"].get("pool") for s in result) == sorted(pools), result
        assert all(float(s["value"][1]) == 0 for s in result), result
