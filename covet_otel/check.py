"""`covet-otel check`: which shipped dashboard panels and alerts would be blind on a Prometheus, and why.

    covet-otel check --prometheus-url http://prometheus:9090 --job shop
    covet-otel check --prometheus-url http://127.0.0.1:9090 --format json

For every alerting rule and every dashboard panel the pack ships, the check asks the running Prometheus
what the rule or panel needs, and reports what is missing:

- a metric never seen at all (the instrumentation or the collector receiver for it is not running);
- a metric seen, but not for the service's job (``--job``);
- a label value missing (no pool named, no route template, no backup ever reported, no 5xx yet);
- a recording rule not loaded, or loaded but producing nothing (then: what its inputs lack);
- the rule itself not loaded in Prometheus (or no rule loaded at all), or failing to evaluate;
- no Alertmanager configured in Prometheus: alerts would fire and notify nobody.

Alerts are analysed, not evaluated (an alert that is not firing is fine): an alert can fire when every
selector its expression needs has data. ``absent()`` needs nothing; for ``a or b`` one side is enough;
for ``a unless b`` only ``a`` is needed. Panels are evaluated: the panel's queries run as Grafana would
run them (dashboard variables resolved from Prometheus, ``$__rate_interval`` as ``--rate-interval``); a
panel with no data is then explained the same way.

``--job`` narrows the app-side metrics (``source="sdk"`` in the catalogue) to one service. Backup and
migration metrics come from ``covet-otel job`` processes with jobs of their own (``covet-backup``,
``covet-migrate`` unless their ``OTEL_SERVICE_NAME`` is set) and are checked across all jobs, as are
the collector's (Redis, host, PostgreSQL) metrics.

The rules and dashboards are the shipped files: ``--rules`` / ``--dashboards`` (files or directories),
by default ``alerts/`` and ``grafana/dashboards/`` of the current directory or of the source checkout,
and otherwise built from the mixin definition (``--config`` overrides, as ``covet-otel mixin build``).

Exit status: 0 when every critical alert can fire, 1 when at least one cannot (or no Alertmanager is
configured, or the rules are not loaded), 2 when Prometheus cannot be asked or the input is unusable.
Needs the ``check`` extra (promql-parser, PyYAML).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CRITICAL = "critical"
NOT_YET = "not_yet"  # the condition has not happened yet (no failure so far): not blind
NO_VALUES = "__covet_check_no_values_for_{}__"
_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
# why a label value is usually missing, by label: said next to the finding
LABEL_HINTS = {
    "pool": "no asyncpg pool is named or used (covet_otel.instrumentation.asyncpg.name_pool)",
    "route": "no request matched a route template (raw paths are never labels)",
    "backup": "no backup ever reported (`covet-otel job backup --name ...`)",
    "migrator": "no migration run ever reported (`covet-otel job migrate`)",
    "event": "no business event declared or recorded",
    "check": "no health check has run (nothing probed /health)",
    "status_code": "no response with that status yet",
    "outcome": "no run or call with that outcome yet",
    "database": "postgres_exporter reports no database (collector/postgresql.yaml not loaded?)",
}
SOURCE_HINTS = {
    "sdk": "the app does not export it: covet_otel not loaded, its instrumentor off, or the group never used",
    "collector": "the collector's receiver for it is not configured, or its target is down",
    "rule": "a recording rule",
}


class CheckError(Exception):
    """Prometheus could not be asked, or the rules/dashboards could not be read (exit 2)."""


# ---------------------------------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------------------------------
class PrometheusAPI:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._cache: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}

    def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        key = (path, tuple(params))
        if key in self._cache:
            return self._cache[key]
        query = urllib.parse.urlencode(list(params))
        url = f"{self.url}{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            try:
                body = json.load(exc)
            except ValueError:
                raise CheckError(f"{url}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CheckError(f"cannot ask Prometheus at {self.url}: {exc}") from exc
        if body.get("status") != "success":
            raise CheckError(f"{url}: {body.get('errorType')}: {body.get('error')}")
        self._cache[key] = body["data"]
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", [("query", promql)])
        return data["result"] if data["resultType"] in ("vector", "matrix") else [data["result"]]

    def series(self, selector: str) -> list[dict[str, str]]:
        return self.get("/api/v1/series", [("match[]", selector)])


# ---------------------------------------------------------------------------------------------------
# PromQL analysis
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value), without __name__ when name is set
    # inside a *_over_time function: the selector has data when it had some within this many seconds
    # (max_over_time(x[1h]) unless x is how an alert sees a series that disappeared)
    range_s: float = 0.0

    def with_matchers(self, matchers: Iterable[tuple[str, str, str]]) -> Selector:
        return Selector(self.name, tuple(matchers), self.range_s)

    def presence(self) -> str:
        """PromQL that returns the selector's series (over its range, when it has one)."""
        text = self.render()
        return f"last_over_time({text}[{int(self.range_s)}s])" if self.range_s else text

    def render(self, extra: Iterable[tuple[str, str, str]] = ()) -> str:
        parts = [f"{label}{op}{json.dumps(value)}" for label, op, value in (*self.matchers, *extra)]
        if not self.name:
            return "{" + ", ".join(parts) + "}"
        return self.name + ("{" + ", ".join(parts) + "}" if parts else "")


@dataclass
class Requirement:
    """What an expression needs to return data: ``all`` of its parts, or ``any`` of them."""

    kind: str  # "selector", "all", "any", "none"
    selector: Selector | None = None
    parts: list[Requirement] = field(default_factory=list)

    def selectors(self) -> Iterator[Selector]:
        if self.selector is not None:
            yield self.selector
        for part in self.parts:
            yield from part.selectors()


def _selector(node: Any, range_s: float = 0.0) -> Selector:
    name = node.name or ""
    matchers = []
    for m in node.matchers.matchers:
        op = _OPS[str(m.op).rsplit(".", 1)[-1]]
        if m.name == "__name__" and not name and op == "=":
            name = m.value
            continue
        matchers.append((m.name, op, m.value))
    return Selector(name, tuple(matchers), range_s)


def requirement(node: Any, range_s: float = 0.0) -> Requirement:
    """The requirement tree of a parsed PromQL expression (see the module docstring). ``range_s`` is
    the lookback of an enclosing ``*_over_time`` function."""
    import promql_parser as pp

    if isinstance(node, pp.VectorSelector):
        return Requirement("selector", _selector(node, range_s))
    if isinstance(node, pp.MatrixSelector):
        return requirement(node.vector_selector, range_s)
    if isinstance(node, (pp.NumberLiteral, pp.StringLiteral)):
        return Requirement("none")
    if isinstance(node, pp.Call):
        name = node.func.name
        if name in ("absent", "absent_over_time", "vector", "time", "pi"):
            return Requirement("none")
        parts = []
        for arg in node.args:
            inner = range_s
            if name.endswith("_over_time") and isinstance(arg, (pp.MatrixSelector, pp.SubqueryExpr)):
                inner = max(range_s, arg.range.total_seconds())
            parts.append(requirement(arg, inner))
        return Requirement("all", parts=parts)
    if isinstance(node, pp.BinaryExpr):
        op = str(node.op)
        lhs, rhs = requirement(node.lhs, range_s), requirement(node.rhs, range_s)
        if op == "or":
            return Requirement("any", parts=[lhs, rhs])
        if op == "unless":
            return lhs
        return Requirement("all", parts=[lhs, rhs])
    if isinstance(node, (pp.AggregateExpr, pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
        return requirement(node.expr, range_s)
    raise CheckError(f"unsupported PromQL node {type(node).__name__}")


def parse(expr: str) -> Requirement:
    import promql_parser as pp

    try:
        return requirement(pp.parse(expr))
    except ValueError as exc:
        raise CheckError(f"cannot parse {expr!r}: {exc}") from exc


# ---------------------------------------------------------------------------------------------------
# findings
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reason:
    kind: str
    detail: str
    metric: str = ""
    hint: str = ""

    def text(self) -> str:
        return self.detail + (f" ({self.hint})" if self.hint else "")


class Analyzer:
    """Answers "does this selector have data, and if not why" against one Prometheus, cached."""

    def __init__(
        self, api: PrometheusAPI, job: str | None, recording: Mapping[str, str], loaded: set[str]
    ) -> None:
        from .catalogue import BY_NAME

        self.api = api
        self.job = job
        self.recording = recording  # shipped recording rules: name -> expression
        self.loaded = loaded  # recording rules Prometheus has loaded
        self.catalogue = BY_NAME
        self._reasons: dict[str, list[Reason]] = {}

    def _definition(self, name: str) -> Any:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        return self.catalogue.get(name) or self.catalogue.get(base)

    def scoped(self, selector: Selector) -> Selector:
        """The selector narrowed to ``--job`` when it is an app-side metric."""
        definition = self._definition(selector.name)
        if self.job is None or definition is None or definition.source != "sdk":
            return selector
        if definition.group == "backup_migration":
            return selector
        matchers = (*(m for m in selector.matchers if m[0] != "job"), ("job", "=", self.job))
        return selector.with_matchers(matchers)

    def reasons(self, selector: Selector, depth: int = 0) -> list[Reason]:
        """[] when the selector has series; otherwise why not."""
        selector = self.scoped(selector)
        key = selector.presence()
        if key not in self._reasons:
            self._reasons[key] = self._explain(selector, depth)
        return self._reasons[key]

    def _count(self, selector: Selector | str) -> int:
        text = selector.presence() if isinstance(selector, Selector) else selector
        result = self.api.query(f"count({text})")
        return int(float(result[0]["value"][1])) if result else 0

    def _explain(self, selector: Selector, depth: int) -> list[Reason]:
        name = selector.name
        if not name:  # {__name__=~"a|b", ...}: judge by the whole selector only
            if self._count(selector):
                return []
            return [Reason("no_data", f"no series match {selector.render()}")]
        if self._count(selector):
            return []
        definition = self._definition(name)
        if not self._count(selector.with_matchers(())):
            if name in self.recording:
                if name not in self.loaded:
                    return [Reason("recording_rule_not_loaded", f"recording rule {name} is not loaded", name)]
                inputs = [
                    r for s in parse(self.recording[name]).selectors() for r in self.reasons(s, depth + 1)
                ]
                if not inputs:
                    # its inputs are there: it has not been evaluated since they appeared (rule groups
                    # run at their own interval) or its expression filters everything out right now
                    detail = f"recording rule {name} has no result yet, although every series it reads exists"
                    return [Reason(NOT_YET, detail, name)]
                detail = f"recording rule {name} is loaded but produces no series"
                return [Reason("recording_rule_empty", detail, name), *inputs][:5]
            if name in ("ALERTS", "ALERTS_FOR_STATE"):
                return [Reason(NOT_YET, f"{name}: no alert is pending or firing", name)]
            if name.startswith("otelcol_") and self._count('{__name__=~"otelcol_.+"}'):
                detail = f"{name} is never seen; the collector creates it when it first counts one"
                return [Reason(NOT_YET, detail, name)]
            source = definition.source if definition is not None else ""
            return [Reason("metric_never_seen", f"{name} is never seen", name, SOURCE_HINTS.get(source, ""))]
        job = next((m for m in selector.matchers if m[0] == "job"), None)
        if job is not None and not self._count(selector.with_matchers((job,))):
            jobs = sorted({s.get("job", "") for s in self.api.series(name)})[:10]
            detail = (
                f"{name} has no series with job{job[1]}{json.dumps(job[2])} (jobs seen: {', '.join(jobs)})"
            )
            return [Reason("job_missing", detail, name)]
        base = (job,) if job is not None else ()
        found = []
        for matcher in selector.matchers:
            if matcher[0] == "job" or self._count(selector.with_matchers((*base, matcher))):
                continue
            label, op, value = matcher
            values = sorted({s.get(label, "") for s in self.api.series(Selector(name, base).render())})
            seen = ", ".join(v or '""' for v in values[:10]) or "none"
            bounded = definition is not None and any(
                lab.name == label and lab.values for lab in definition.labels
            )
            if bounded or label == "status_code":
                # a label with a fixed set of values (outcome, error_type, ...): the series of that value
                # appears when the event first happens, and the alert or panel then sees it
                detail = f"{name}{{{label}{op}{json.dumps(value)}}}: none yet (values seen: {seen})"
                found.append(Reason(NOT_YET, detail, name, LABEL_HINTS.get(label, "")))
                continue
            if value.startswith("__covet_check_no_values_for_"):
                variable = value.removeprefix("__covet_check_no_values_for_").removesuffix("__")
                detail = f"dashboard variable ${variable} has no values ({name} has no {label} label values)"
            else:
                detail = f"{name}: no series with {label}{op}{json.dumps(value)} (values seen: {seen})"
            found.append(Reason("label_value_missing", detail, name, LABEL_HINTS.get(label, "")))
        if not found:
            found.append(
                Reason("no_data", f"no series match {selector.render()} (each matcher alone matches)", name)
            )
        return found

    def unmet(self, req: Requirement) -> list[Reason]:
        """[] when the requirement tree is satisfied; otherwise the reasons of what is missing."""
        if req.kind == "none":
            return []
        if req.kind == "selector":
            assert req.selector is not None
            return self.reasons(req.selector)
        results = [self.unmet(p) for p in req.parts]
        if req.kind == "any":
            if any(not r for r in results):
                return []
            waiting = [r for r in results if not blind(r)]
            if waiting:
                return min(waiting, key=len)
        return _dedupe(r for rs in results for r in rs)


def blind(reasons: Iterable[Reason | Mapping[str, str]]) -> bool:
    """True when a reason is more than a condition that has not happened yet."""
    return any((r.kind if isinstance(r, Reason) else r["kind"]) != NOT_YET for r in reasons)


def _dedupe(reasons: Iterable[Reason]) -> list[Reason]:
    seen: dict[tuple[str, str], Reason] = {}
    for reason in reasons:
        seen.setdefault((reason.kind, reason.detail), reason)
    return list(seen.values())


# ---------------------------------------------------------------------------------------------------
# inputs: rules and dashboards
# ---------------------------------------------------------------------------------------------------
def _files(paths: Sequence[Path], suffixes: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.name.endswith(suffixes))
        elif path.is_file():
            found.append(path)
        else:
            raise CheckError(f"{path} does not exist")
    return found


def load_rules(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(alerting rules with their group and file, recording rules name -> expression)."""
    import yaml

    alerts: list[dict[str, Any]] = []
    recording: dict[str, str] = {}
    for path in _files(paths, (".rules.yml", ".rules.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in data.get("groups") or []:
            for rule in group.get("rules") or []:
                if "alert" in rule:
                    alerts.append({**rule, "group": group["name"], "file": path.name})
                elif "record" in rule:
                    recording[rule["record"]] = rule["expr"]
    return alerts, recording


def load_dashboards(paths: Sequence[Path]) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, json.loads(p.read_text(encoding="utf-8"))) for p in _files(paths, (".json",))]


def _panels(panels: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        if panel.get("type") == "row":
            yield from _panels(panel.get("panels") or [])
        elif panel.get("targets"):
            yield panel


def default_inputs(
    config: Sequence[Path],
) -> tuple[list[Path], list[Path], tempfile.TemporaryDirectory | None]:
    """alerts/ and grafana/dashboards/ of the current directory or of the source checkout; otherwise
    built from the mixin definition into a temporary directory."""
    if not config:
        for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
            if (base / "alerts").is_dir() and (base / "grafana" / "dashboards").is_dir():
                return [base / "alerts"], [base / "grafana" / "dashboards"], None
    try:
        from .mixin.build import build
        from .mixin.config import load_config
    except ImportError as exc:
        raise CheckError(f"give --rules and --dashboards (the mixin cannot build them here: {exc})") from exc
    tmp = tempfile.TemporaryDirectory(prefix="covet-check-")
    build(load_config(*config) if config else load_config(), Path(tmp.name))
    return [Path(tmp.name) / "alerts"], [Path(tmp.name) / "grafana" / "dashboards"], tmp


# ---------------------------------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------------------------------
def _regex_literal(value: str) -> str:
    """``value`` as a regex matching itself, written for a double-quoted PromQL string (whose own
    escapes need the regex backslash doubled; re.escape's ``\\-`` is not a valid escape there)."""
    escaped = re.sub(r"([.+*?()|\[\]{}^$\\])", r"\\\\\1", value)
    return escaped.replace('"', '\\"')


def _substitute(expr: str, values: Mapping[str, list[str]], rate_interval: str) -> str:
    builtins = {
        "__rate_interval": rate_interval,
        "__interval": rate_interval,
        "__range": "1h",
        "__range_s": "3600",
        "__interval_ms": "60000",
    }

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in builtins:
            return builtins[name]
        if name not in values:
            return match.group(0)
        found = values[name]
        if not found:
            return NO_VALUES.format(name)
        if len(found) == 1:
            return _regex_literal(found[0])
        return "(" + "|".join(_regex_literal(v) for v in found) + ")"

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", one, expr)


def _variables(
    api: PrometheusAPI, analyzer: Analyzer, dashboard: dict[str, Any], rate_interval: str
) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for var in (dashboard.get("templating") or {}).get("list") or []:
        name = var.get("name", "")
        if var.get("type") != "query":
            continue
        query = var.get("query")
        query = query.get("query", "") if isinstance(query, dict) else str(query or "")
        match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query, re.S)
        if not match:
            continue
        selector_text = _substitute(match.group(1), values, rate_interval)
        label = match.group(2)
        if name == "job" and analyzer.job is not None:
            node = parse(selector_text)
            scoped = [analyzer.scoped(s) for s in node.selectors()]
            if any(("job", "=", analyzer.job) in s.matchers for s in scoped):
                values[name] = [analyzer.job]
                continue
        found = sorted({s.get(label, "") for s in api.series(selector_text)} - {""})
        values[name] = found
    return values


def run_check(
    prometheus_url: str,
    *,
    job: str | None = None,
    rules: Sequence[Path] = (),
    dashboards: Sequence[Path] = (),
    config: Sequence[Path] = (),
    rate_interval: str = "5m",
    timeout: float = 10.0,
) -> dict[str, Any]:
    """The whole report as a dict (what ``--format json`` prints)."""
    tmp = None
    if not rules or not dashboards:
        default_rules, default_dashboards, tmp = default_inputs(config)
        rules = rules or default_rules
        dashboards = dashboards or default_dashboards
    try:
        return _run(prometheus_url, job, rules, dashboards, rate_interval, timeout)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run(
    prometheus_url: str,
    job: str | None,
    rule_paths: Sequence[Path],
    dashboard_paths: Sequence[Path],
    rate_interval: str,
    timeout: float,
) -> dict[str, Any]:
    api = PrometheusAPI(prometheus_url, timeout)
    alerts, recording = load_rules(rule_paths)
    boards = load_dashboards(dashboard_paths)

    groups = api.get("/api/v1/rules")["groups"]
    loaded_rules = {r["name"]: r for g in groups for r in g["rules"]}
    loaded_alerts = {n for n, r in loaded_rules.items() if r["type"] == "alerting"}
    loaded_recording = {n for n, r in loaded_rules.items() if r["type"] == "recording"}
    active_am = [a["url"] for a in api.get("/api/v1/alertmanagers")["activeAlertmanagers"]]
    targets_down = [
        {"job": t["labels"].get("job", ""), "url": t["scrapeUrl"], "error": t.get("lastError", "")}
        for t in api.get("/api/v1/targets", [("state", "active")])["activeTargets"]
        if t["health"] == "down"
    ]
    analyzer = Analyzer(api, job, recording, loaded_recording)

    global_reasons: list[Reason] = []
    if not loaded_rules:
        global_reasons.append(
            Reason(
                "rules_not_loaded",
                "Prometheus has no rules loaded at all",
                hint="add the rule files to rule_files",
            )
        )
    if not active_am:
        global_reasons.append(
            Reason(
                "alertmanager_not_configured",
                "Prometheus has no active Alertmanager: alerts would fire and notify nobody",
                hint="alerting.alertmanagers in prometheus.yml",
            )
        )

    alert_results = []
    for rule in alerts:
        severity = str((rule.get("labels") or {}).get("severity", ""))
        reasons = list(global_reasons)
        if loaded_rules and rule["alert"] not in loaded_alerts:
            reasons.append(Reason("rule_not_loaded", f"alert {rule['alert']} is not loaded in Prometheus"))
        elif rule["alert"] in loaded_rules and loaded_rules[rule["alert"]].get("health") == "err":
            error = loaded_rules[rule["alert"]].get("lastError", "")
            reasons.append(Reason("rule_error", f"alert {rule['alert']} fails to evaluate: {error}"))
        reasons += analyzer.unmet(parse(str(rule["expr"])))
        reasons = _dedupe(reasons)
        alert_results.append(
            {
                "alert": rule["alert"],
                "severity": severity,
                "group": rule["group"],
                "file": rule["file"],
                "can_fire": not blind(reasons),
                "reasons": [asdict(r) for r in reasons if r.kind != NOT_YET],
                "waits_for": [asdict(r) for r in reasons if r.kind == NOT_YET],
            }
        )

    dashboard_results = []
    for path, board in boards:
        values = _variables(api, analyzer, board, rate_interval)
        panels = []
        for panel in _panels(board.get("panels") or []):
            exprs = [_substitute(t["expr"], values, rate_interval) for t in panel["targets"] if t.get("expr")]
            has_data = any(api.query(e) for e in exprs)
            reasons: list[Reason] = []
            if not has_data:
                for expr in exprs:
                    reasons += analyzer.unmet(parse(expr))
                if not reasons:
                    reasons.append(
                        Reason(
                            "no_data", "every metric it reads is present, but the query returns nothing now"
                        )
                    )
            panels.append(
                {
                    "id": panel.get("id"),
                    "title": panel.get("title", ""),
                    "has_data": has_data,
                    # no data only because nothing has happened yet (no failure, no firing alert)
                    "waiting": not has_data and not blind(reasons),
                    "reasons": [asdict(r) for r in _dedupe(reasons)],
                }
            )
        dashboard_results.append(
            {
                "dashboard": board.get("title", path.stem),
                "uid": board.get("uid", ""),
                "file": path.name,
                "panels": panels,
            }
        )

    blind_alerts = [a for a in alert_results if not a["can_fire"]]
    critical_blind = [a for a in blind_alerts if a["severity"] == CRITICAL]
    all_panels = [p for d in dashboard_results for p in d["panels"]]
    summary = {
        "alerts": len(alert_results),
        "alerts_blind": len(blind_alerts),
        "critical_alerts": sum(a["severity"] == CRITICAL for a in alert_results),
        "critical_alerts_blind": len(critical_blind),
        "panels": len(all_panels),
        "panels_blind": sum(not p["has_data"] for p in all_panels),
        "rules_loaded": {"alerting": len(loaded_alerts), "recording": len(loaded_recording)},
        "rules_shipped": {"alerting": len(alerts), "recording": len(recording)},
    }
    return {
        "prometheus": api.url,
        "job": job,
        "alertmanagers": active_am,
        "targets_down": targets_down,
        "findings": [asdict(r) for r in global_reasons],
        "alerts": alert_results,
        "dashboards": dashboard_results,
        "summary": summary,
        "exit_code": 1 if critical_blind else 0,
    }


# ---------------------------------------------------------------------------------------------------
# output and CLI
# ---------------------------------------------------------------------------------------------------
def _reason_text(reason: Mapping[str, str]) -> str:
    return reason["detail"] + (f" ({reason['hint']})" if reason.get("hint") else "")


def as_text(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    lines = [
        f"covet-otel check: {report['prometheus']}" + (f", job {report['job']!r}" if report["job"] else ""),
        f"rules loaded: {s['rules_loaded']['alerting']} alerting, {s['rules_loaded']['recording']} recording "
        f"(shipped: {s['rules_shipped']['alerting']}, {s['rules_shipped']['recording']})",
        "alertmanagers: " + (", ".join(report["alertmanagers"]) or "NONE"),
    ]
    for finding in report["findings"]:
        lines.append(f"! {_reason_text(finding)}")
    for target in report["targets_down"]:
        lines.append(f"! scrape target {target['url']} (job {target['job']}) is down: {target['error']}")
    lines.append("")
    lines.append(
        f"alerts: {s['alerts'] - s['alerts_blind']} of {s['alerts']} can fire; "
        f"critical: {s['critical_alerts'] - s['critical_alerts_blind']} of {s['critical_alerts']}"
    )
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    global_kinds = {f["kind"] for f in report["findings"]}
    for alert in sorted(report["alerts"], key=lambda a: (order.get(a["severity"], 9), a["alert"])):
        if alert["can_fire"]:
            continue
        own = [r for r in alert["reasons"] if r["kind"] not in global_kinds]
        lines.append(f"  BLIND {alert['severity']:<8} {alert['alert']}")
        for reason in own:
            lines.append(f"      - {_reason_text(reason)}")
    waiting = [a for a in report["alerts"] if a["can_fire"] and a["waits_for"]]
    if waiting:
        lines.append(f"  can fire, once the condition first happens ({len(waiting)}):")
        for alert in sorted(waiting, key=lambda a: (order.get(a["severity"], 9), a["alert"])):
            details = "; ".join(_reason_text(r) for r in alert["waits_for"])
            lines.append(f"      {alert['alert']}: {details}")
    lines.append("")
    lines.append(f"panels: {s['panels'] - s['panels_blind']} of {s['panels']} have data")
    for board in report["dashboards"]:
        empty = [p for p in board["panels"] if not p["has_data"]]
        if not empty:
            continue
        lines.append(
            f"  {board['dashboard']} ({board['file']}): {len(empty)} of {len(board['panels'])} without data"
        )
        for panel in empty:
            lines.append(
                f"    - {panel['title']}" + (" (waiting: nothing happened yet)" if panel["waiting"] else "")
            )
            for reason in panel["reasons"]:
                lines.append(f"        {_reason_text(reason)}")
    lines.append("")
    if report["exit_code"]:
        lines.append(f"FAIL: {s['critical_alerts_blind']} critical alert(s) cannot fire")
    else:
        lines.append("OK: every critical alert can fire")
    return "\n".join(lines) + "\n"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check",
        help="report which shipped dashboard panels and alerts are blind on a Prometheus, and why",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prometheus-url", required=True, help="e.g. http://localhost:9090")
    parser.add_argument("--job", help="the service's job label: narrow the app-side metrics to it")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--rules", action="append", type=Path, default=[], help="rule file or directory")
    parser.add_argument(
        "--dashboards", action="append", type=Path, default=[], help="dashboard JSON or directory"
    )
    parser.add_argument(
        "--config",
        action="append",
        type=Path,
        default=[],
        help="mixin override YAML (when building the inputs)",
    )
    parser.add_argument("--rate-interval", default="5m", help="what $__rate_interval stands for (default 5m)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per Prometheus request")
    parser.set_defaults(func=main)
    return parser


def main(args: argparse.Namespace) -> int:
    try:
        report = run_check(
            args.prometheus_url,
            job=args.job,
            rules=args.rules,
            dashboards=args.dashboards,
            config=args.config,
            rate_interval=args.rate_interval,
            timeout=args.timeout,
        )
    except CheckError as exc:
        print(f"covet-otel check: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"covet-otel check: {exc}; install covet-otel[check]", file=sys.stderr)
        return 2
    if args.format == "json":
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(as_text(report))
    return int(report["exit_code"])
