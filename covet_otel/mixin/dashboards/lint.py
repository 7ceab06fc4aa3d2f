"""The project's own lint over dashboard JSON models.

It implements the rules Grafana's dashboard-linter enforces (that tool is not used: it imports
AGPL Loki code) and the covet ones. Each rule is a function `(dashboards, config) -> problems`;
`lint()` runs them all. Structural validity against Grafana's schema types is checked separately
by tools/dashboard-check.

    from covet_otel.mixin.dashboards.lint import lint
    problems = lint(models, config)          # [] when clean; str(problem) names rule and place
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..config import DASHBOARD_UIDS, MixinConfig
from . import PACK_PANEL_COUNTS
from ._kit import DATASOURCE_VAR, RUNBOOK_LINK_PREFIX, TAG, UNIT_FOR_THRESHOLD
from .promql import RANGE_FUNCTIONS, Selector, metric_labels, selectors, substitute, variable_names

Dashboards = Mapping[str, Mapping[str, Any]]

# Sentinels for Grafana's built-in variables: after substitution the lint can still tell which
# range a rate() was given.
RATE_INTERVAL, RANGE, INTERVAL = "1234s", "4321s", "567s"
_SENTINEL_RANGES = {timedelta(seconds=1234): "$__rate_interval", timedelta(seconds=4321): "$__range"}
BUILTINS = {
    "__rate_interval": RATE_INTERVAL,
    "__range": RANGE,
    "__interval": INTERVAL,
    "__range_s": "4321",
    "__interval_ms": "567000",
}
MIN_REFRESH_SECONDS = 10


@dataclass(frozen=True)
class Problem:
    rule: str
    uid: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.uid}{' ' + self.where if self.where else ''}: {self.message}"


def _var_marker(name: str) -> str:
    return f"__var_{name}__"


def panels(model: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel, including those inside rows."""
    for p in model.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


def _where(panel: Mapping[str, Any]) -> str:
    return f"panel {panel.get('id')} {panel.get('title', '')!r}"


def variables(model: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {v["name"]: v for v in model.get("templating", {}).get("list", [])}


def query_text(variable: Mapping[str, Any]) -> str:
    q = variable.get("query", "")
    return q.get("query", "") if isinstance(q, Mapping) else str(q)


def lint_substitute(expr: str, model: Mapping[str, Any]) -> str:
    """`expr` with built-ins as sentinels and dashboard variables as markers (`__var_job__`)."""
    values: dict[str, str] = dict(BUILTINS)
    for name in variables(model):
        values[name] = _var_marker(name)
    return substitute(expr, values)


def parsed_targets(model: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str, list[Selector] | str]]:
    """(panel, expr, selectors or the parse/substitution error) for every panel target."""
    for panel in panels(model):
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            try:
                yield panel, expr, selectors(lint_substitute(expr, model))
            except (KeyError, ValueError) as exc:
                yield panel, expr, str(exc)


# ── rules ───────────────────────────────────────────────────────────────────────────────────────


def rule_uids(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """The fixed set of UIDs; the pack's dashboards keep at least their panel counts; tag covet."""
    for uid in DASHBOARD_UIDS:
        if uid not in ds:
            yield Problem("uids", uid, "", "dashboard missing")
    for uid, model in ds.items():
        if model.get("uid") != uid:
            yield Problem("uids", uid, "", f"uid field is {model.get('uid')!r}")
        if uid not in DASHBOARD_UIDS:
            yield Problem("uids", uid, "", "not one of the fixed dashboard UIDs")
        if TAG not in model.get("tags", []):
            yield Problem("uids", uid, "", f"not tagged {TAG!r}")
        want = PACK_PANEL_COUNTS.get(uid)
        have = len(list(panels(model)))
        if want is not None and have < want:
            yield Problem("uids", uid, "", f"{have} panels, the pack's dashboard had {want}")


def rule_schema(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """The current Grafana schema version (that of the pinned grafana-foundation-sdk); a sensible
    refresh and a relative default time range."""
    from grafana_foundation_sdk.models.dashboard import Dashboard

    current = Dashboard().schema_version
    for uid, model in ds.items():
        if model.get("schemaVersion") != current:
            yield Problem(
                "schema", uid, "", f"schemaVersion {model.get('schemaVersion')}, current is {current}"
            )
        refresh = str(model.get("refresh") or "")
        from ..config import duration_seconds

        try:
            ok = duration_seconds(refresh) >= MIN_REFRESH_SECONDS
        except ValueError:
            ok = False
        if not ok:
            yield Problem(
                "schema", uid, "", f"refresh {refresh!r}: set one of at least {MIN_REFRESH_SECONDS}s"
            )
        time = model.get("time") or {}
        if not str(time.get("from", "")).startswith("now-") or time.get("to") != "now":
            yield Problem("schema", uid, "", f"default time range {time!r} is not relative to now")


def rule_datasource(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """A templated Prometheus datasource, used by every panel, target and annotation."""
    ref = f"${{{DATASOURCE_VAR}}}"
    for uid, model in ds.items():
        var = variables(model).get(DATASOURCE_VAR)
        if var is None or var.get("type") != "datasource" or var.get("query") != "prometheus":
            yield Problem(
                "datasource", uid, "", f"no '{DATASOURCE_VAR}' variable of type datasource/prometheus"
            )
        places: list[tuple[str, Any]] = []
        for panel in panels(model):
            places.append((_where(panel), panel.get("datasource")))
            for t in panel.get("targets", []):
                places.append((f"{_where(panel)} target {t.get('refId')}", t.get("datasource")))
        for a in model.get("annotations", {}).get("list", []):
            places.append((f"annotation {a.get('name')!r}", a.get("datasource")))
        for v in variables(model).values():
            if v.get("type") == "query":
                places.append((f"variable {v['name']}", v.get("datasource")))
        for where, d in places:
            if (
                not isinstance(d, Mapping)
                or d.get("uid") not in (ref, f"${DATASOURCE_VAR}")
                or d.get("type") != "prometheus"
            ):
                yield Problem("datasource", uid, where, f"datasource {d!r} is not the templated {ref}")


def rule_variables(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """job and instance query variables, multi-value with All."""
    sel = config.selectors
    for uid, model in ds.items():
        vs = variables(model)
        for name in (sel.job_label, sel.instance_label):
            v = vs.get(name)
            if v is None or v.get("type") != "query":
                yield Problem("variables", uid, "", f"no query variable {name!r}")
                continue
            if not v.get("multi") or not v.get("includeAll"):
                yield Problem("variables", uid, f"variable {name}", "must be multi-value with All")
        inst = vs.get(sel.instance_label)
        if inst is not None and f"${sel.job_label}" not in query_text(inst):
            yield Problem(
                "variables", uid, f"variable {sel.instance_label}", f"does not follow ${sel.job_label}"
            )


def _filters(s: Selector, label: str, var: str) -> bool:
    return s.matcher(label) == ("=~", _var_marker(var))


def rule_target_filters(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """Every selector filters by $job and $instance (where its metric has them) and by each other
    query variable whose label the metric carries; every query variable is used."""
    sel = config.selectors
    for uid, model in ds.items():
        extra = [
            n
            for n, v in variables(model).items()
            if v.get("type") == "query" and n not in (sel.job_label, sel.instance_label)
        ]
        used: set[str] = set()
        for panel, expr, result in parsed_targets(model):
            used |= variable_names(expr)
            if isinstance(result, str):
                continue  # reported by rule_promql
            for s in result:
                try:
                    labels = metric_labels(s.metric)
                except KeyError:
                    continue  # reported by rule_promql
                if labels is None:  # ALERTS: not a per-job series
                    continue
                for label in (sel.job_label, sel.instance_label, *extra):
                    if label in labels and not _filters(s, label, label):
                        yield Problem(
                            "target-filters",
                            uid,
                            _where(panel),
                            f'{s.metric} is not filtered by {label}=~"${label}"',
                        )
        for name in extra:
            if name not in used:
                yield Problem("target-filters", uid, f"variable {name}", "not used by any panel query")


def rule_rate_interval(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """rate(), irate(), increase(), delta() over $__rate_interval (or $__range for totals over
    the dashboard range), never a fixed window."""
    for uid, model in ds.items():
        for panel, _expr, result in parsed_targets(model):
            if isinstance(result, str):
                continue
            for s in result:
                if s.function in RANGE_FUNCTIONS and s.range not in _SENTINEL_RANGES:
                    yield Problem(
                        "rate-interval",
                        uid,
                        _where(panel),
                        f"{s.function}({s.metric}[{s.range}]) must use $__rate_interval",
                    )


def rule_promql(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """Every query parses; every metric is in the catalogue (or a shipped recording rule, or a
    Prometheus/collector series); every label it filters on exists on that metric."""
    for uid, model in ds.items():
        exprs = [(panel, expr, result) for panel, expr, result in parsed_targets(model)]
        for a in model.get("annotations", {}).get("list", []):
            if a.get("expr"):
                try:
                    exprs.append(
                        (
                            {"id": "annotation", "title": a.get("name")},
                            a["expr"],
                            selectors(lint_substitute(a["expr"], model)),
                        )
                    )
                except (KeyError, ValueError) as exc:
                    exprs.append(({"id": "annotation", "title": a.get("name")}, a["expr"], str(exc)))
        for v in variables(model).values():
            if v.get("type") == "query":
                q = query_text(v)
                inner = q[len("label_values(") : q.rindex(",")] if q.startswith("label_values(") else q
                try:
                    exprs.append(
                        ({"id": "variable", "title": v["name"]}, q, selectors(lint_substitute(inner, model)))
                    )
                except (KeyError, ValueError) as exc:
                    exprs.append(({"id": "variable", "title": v["name"]}, q, str(exc)))
        for panel, expr, result in exprs:
            if isinstance(result, str):
                yield Problem("promql", uid, _where(panel), result)
                continue
            if not result:
                yield Problem("promql", uid, _where(panel), f"no series selector in {expr!r}")
            for s in result:
                try:
                    labels = metric_labels(s.metric)
                except KeyError as exc:
                    yield Problem("promql", uid, _where(panel), str(exc).strip("'\""))
                    continue
                if labels is None:
                    continue
                for name, _op, _value in s.matchers:
                    if name not in labels:
                        yield Problem("promql", uid, _where(panel), f"{s.metric} has no label {name!r}")


def rule_panel_text(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """Every panel has a title, a unit and a description that names a metric it queries."""
    for uid, model in ds.items():
        if not model.get("title"):
            yield Problem("panel-text", uid, "", "dashboard has no title")
        for panel in panels(model):
            if not str(panel.get("title", "")).strip():
                yield Problem("panel-text", uid, _where(panel), "no title")
            description = str(panel.get("description", ""))
            if not description.strip():
                yield Problem("panel-text", uid, _where(panel), "no description")
            if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
                yield Problem("panel-text", uid, _where(panel), "no unit")
            names: set[str] = set()
            for t in panel.get("targets", []):
                try:
                    for s in selectors(lint_substitute(t.get("expr", ""), model)):
                        names.add(s.metric)
                        for suffix in ("_bucket", "_count", "_sum"):
                            names.add(s.metric.removesuffix(suffix))
                except (KeyError, ValueError):
                    pass
            if names and not any(n in description for n in names):
                yield Problem(
                    "panel-text", uid, _where(panel), f"description names none of its metrics {sorted(names)}"
                )


def rule_thresholds(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """A panel linking an alert's runbook draws that alert's limits (those in the panel's unit) as
    thresholds, with the value of the definition; every enabled alert has such a panel on its
    dashboard (and on its panel_id when set)."""
    linked: dict[str, set[tuple[str, int]]] = {}
    for uid, model in ds.items():
        for panel in panels(model):
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
            values = [s.get("value") for s in steps if s.get("value") is not None]
            for link in panel.get("links", []):
                title = str(link.get("title", ""))
                if not title.startswith(RUNBOOK_LINK_PREFIX):
                    continue
                name = title[len(RUNBOOK_LINK_PREFIX) :]
                try:
                    alert = config.alert(name)
                except KeyError:
                    yield Problem("thresholds", uid, _where(panel), f"runbook link to unknown alert {name!r}")
                    continue
                linked.setdefault(name, set()).add((uid, panel.get("id")))
                if link.get("url") != config.runbook_url(alert):
                    yield Problem(
                        "thresholds",
                        uid,
                        _where(panel),
                        f"runbook link {link.get('url')!r}"
                        f", the definition's is {config.runbook_url(alert)!r}",
                    )
                if not alert.enabled:
                    yield Problem("thresholds", uid, _where(panel), f"links the disabled alert {name}")
                if name != _primary_alert(panel):
                    continue  # further links: the runbook only
                for limit in alert.limits:
                    if unit in UNIT_FOR_THRESHOLD.get(limit.unit, ()) and limit.value not in values:
                        yield Problem(
                            "thresholds",
                            uid,
                            _where(panel),
                            f"{name} fires at {limit.name}={limit.value:g}"
                            f" ({limit.unit}); the panel's thresholds are {values}",
                        )
    for alert in config.enabled_alerts:
        places = linked.get(alert.name, set())
        if not any(u == alert.dashboard_uid for u, _ in places):
            yield Problem(
                "thresholds",
                alert.dashboard_uid,
                "",
                f"no panel links the runbook of {alert.name}, whose dashboard this is",
            )
        elif alert.panel_id is not None and (alert.dashboard_uid, alert.panel_id) not in places:
            yield Problem(
                "thresholds",
                alert.dashboard_uid,
                f"panel {alert.panel_id}",
                f"{alert.name} points at this panel, which does not link its runbook",
            )


def _primary_alert(panel: Mapping[str, Any]) -> str | None:
    """The first runbook link names the alert whose limits the panel draws."""
    for link in panel.get("links", []):
        title = str(link.get("title", ""))
        if title.startswith(RUNBOOK_LINK_PREFIX):
            return title[len(RUNBOOK_LINK_PREFIX) :]
    return None


def rule_links(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """Dashboard links resolve: /d/<uid> links to existing UIDs, tag links to the covet tag, every
    alert's dashboard exists and has a variable for each locating label its dashboard_url passes."""
    for uid, model in ds.items():
        links = model.get("links", [])
        if not any(link.get("type") == "dashboards" and TAG in link.get("tags", []) for link in links):
            yield Problem("links", uid, "", f"no link to the other dashboards by tag {TAG!r}")
        for link in links:
            if link.get("type") == "dashboards" and set(link.get("tags", [])) - {TAG}:
                yield Problem("links", uid, "", f"tag link {link.get('tags')} selects no covet dashboard")
            url = str(link.get("url", ""))
            if link.get("type") == "link" and url.startswith("/d/"):
                target = url[3:].split("?")[0].split("/")[0]
                if target not in ds:
                    yield Problem(
                        "links", uid, "", f"link {link.get('title')!r} to unknown dashboard {target!r}"
                    )
    for alert in config.enabled_alerts:
        model = ds.get(alert.dashboard_uid)
        if model is None:
            yield Problem(
                "links",
                alert.dashboard_uid,
                "",
                f"{alert.name} links to this dashboard, which does not exist",
            )
            continue
        vs = variables(model)
        queried: set[str] = set()
        for _panel, _expr, result in parsed_targets(model):
            if isinstance(result, list):
                for s in result:
                    try:
                        queried |= set(metric_labels(s.metric) or ())
                    except KeyError:
                        pass
        for label in alert.by:
            if label in queried and label not in vs:
                yield Problem(
                    "links",
                    alert.dashboard_uid,
                    "",
                    f"{alert.name} passes var-{label}, the dashboard has no such variable",
                )


def rule_panel_ids(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """Panel ids present and unique within a dashboard (alerts link to panels by id)."""
    for uid, model in ds.items():
        seen: set[int] = set()
        for panel in model.get("panels", []):
            for p in [panel, *panel.get("panels", [])]:
                pid = p.get("id")
                if not isinstance(pid, int):
                    yield Problem("panel-ids", uid, _where(p), "no panel id")
                elif pid in seen:
                    yield Problem("panel-ids", uid, _where(p), f"panel id {pid} used twice")
                else:
                    seen.add(pid)


def rule_annotations(ds: Dashboards, config: MixinConfig) -> Iterator[Problem]:
    """An annotation of the firing alerts (ALERTS) on every dashboard that has alerts."""
    for uid, model in ds.items():
        has_alerts = any(a.dashboard_uid == uid for a in config.enabled_alerts)
        exprs = [
            str(a.get("expr", "")) for a in model.get("annotations", {}).get("list", []) if a.get("enable")
        ]
        if has_alerts and not any(e.startswith("ALERTS{") and 'alertstate="firing"' in e for e in exprs):
            yield Problem("annotations", uid, "", "no enabled annotation of firing ALERTS")


RULES: dict[str, Callable[[Dashboards, MixinConfig], Iterator[Problem]]] = {
    "uids": rule_uids,
    "schema": rule_schema,
    "datasource": rule_datasource,
    "variables": rule_variables,
    "target-filters": rule_target_filters,
    "rate-interval": rule_rate_interval,
    "promql": rule_promql,
    "panel-text": rule_panel_text,
    "thresholds": rule_thresholds,
    "links": rule_links,
    "panel-ids": rule_panel_ids,
    "annotations": rule_annotations,
}


def lint(ds: Dashboards, config: MixinConfig, rules: tuple[str, ...] | None = None) -> list[Problem]:
    """Every problem found by the named rules (all by default)."""
    out: list[Problem] = []
    for name, rule in RULES.items():
        if rules is None or name in rules:
            out.extend(rule(ds, config))
    return out
