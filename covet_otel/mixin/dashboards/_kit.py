"""Shared pieces of every covet dashboard, on top of grafana-foundation-sdk's typed builders.

A dashboard module describes its panels with `Kit` (selectors, thresholds and runbook links come
from the MixinConfig); `Kit.dashboard()` assembles the Grafana JSON model with the conventions
every covet dashboard follows: the templated Prometheus datasource, `job`/`instance` variables
(multi, All) plus the dashboard's own, ALERTS annotations of its alert groups, links to the other
covet dashboards by tag, panel ids 1..n in order, refresh and time range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import bargauge as bargauge_b
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as ts_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dash_m
from grafana_foundation_sdk.models import prometheus as prom_m

from ..config import AlertDef, MixinConfig

TAG = "covet"
DATASOURCE_VAR = "datasource"
# the datasource every panel, query, variable and annotation uses: the dashboard's variable
DS = dash_m.DataSourceRef(type_val="prometheus", uid="${" + DATASOURCE_VAR + "}")

# Grafana unit ids for the MixinConfig threshold units: a threshold is drawn only on a panel whose
# unit shows the same number (a 0.05 "ratio" on a percentunit panel, 90 "percent" on a percent one)
UNIT_FOR_THRESHOLD: dict[str, tuple[str, ...]] = {
    "percent": ("percent",),
    "ratio": ("percentunit",),
    "seconds": ("s", "dtdurations"),
    "bytes": ("bytes", "decbytes"),
    "per_second": ("reqps", "ops", "cps", "eps"),
    "count": ("short", "none"),
    "transactions": ("short",),
}

GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"
# panel links to runbooks are titled "Runbook: <AlertName>"; the lint reads the alert name from it
RUNBOOK_LINK_PREFIX = "Runbook: "


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Var:
    """A query variable over label values: label_values(<metric>{<job/instance...>}, <label>)."""

    name: str
    label: str
    metric: str
    description: str


@dataclass
class PanelSpec:
    kind: str  # timeseries | stat | bargauge | table
    title: str
    description: str
    queries: Sequence[Query]
    unit: str
    width: int = 12
    height: int = 8
    min: float | None = 0
    max: float | None = None
    alert: str | None = None  # the alert behind this panel: runbook link and its limits drawn
    more_alerts: Sequence[str] = ()  # further alerts whose runbooks the panel links (no limits drawn)
    below: bool = False  # the alert fires when the value drops below its limit
    steps: Sequence[tuple[float | None, str]] = ()  # explicit colour steps (value, colour)
    mappings: dict[str, tuple[str, str]] = field(default_factory=dict)  # value -> (text, colour)
    stack: bool = False
    decimals: int | None = None
    no_value: str | None = None  # shown instead of "No data" where empty is a state (e.g. no limit)


class Kit:
    """Selectors, thresholds and panel/dashboard assembly for one MixinConfig."""

    def __init__(self, config: MixinConfig) -> None:
        self.config = config
        self.job = config.selectors.job_label
        self.instance = config.selectors.instance_label

    # ── selectors ───────────────────────────────────────────────────────────────────────────────
    def sel(self, *extra: str) -> str:
        """The matchers of every panel query: the job and instance variables plus `extra`."""
        matchers = [f'{self.job}=~"${self.job}"', f'{self.instance}=~"${self.instance}"', *extra]
        return "{" + ", ".join(matchers) + "}"

    def sel_job(self, *extra: str) -> str:
        """For recording rules aggregated to job (no instance label)."""
        return "{" + ", ".join([f'{self.job}=~"${self.job}"', *extra]) + "}"

    # ── zero instead of "No data" ───────────────────────────────────────────────────────────────
    # A counter series exists only once it moved (errors, timeouts, leaks are created on the first
    # one). `x or vector(0)` would add a label-less series beside x's; instead the fallback is 0
    # for each label set of a series that always exists (`basis`), or, for a single aggregated
    # series, `on()` so the 0 appears only when x is empty.
    @staticmethod
    def or_zero(expr: str, by: str, basis: str) -> str:
        return f"({expr}) or (0 * group by ({by}) ({basis}))"

    @staticmethod
    def or_zero_single(expr: str) -> str:
        return f"({expr}) or on() vector(0)"

    def rate(self, metric: str, *extra: str, fn: str = "rate", window: str = "$__rate_interval") -> str:
        return f"{fn}({metric}{self.sel(*extra)}[{window}])"

    def quantile(self, q: float, histogram: str, by: str, *extra: str) -> str:
        by_le = ", ".join(["le", *[b.strip() for b in by.split(",") if b.strip()]])
        return f"histogram_quantile({q}, sum by ({by_le}) ({self.rate(histogram + '_bucket', *extra)}))"

    def alert(self, name: str) -> AlertDef:
        return self.config.alert(name)

    # ── panels ──────────────────────────────────────────────────────────────────────────────────
    def _limits(self, spec: PanelSpec) -> list[float]:
        """The alert's limits whose unit this panel shows, i.e. the lines the alert fires at."""
        if spec.alert is None:
            return []
        alert = self.alert(spec.alert)
        if not alert.enabled:
            return []
        return [t.value for t in alert.limits if spec.unit in UNIT_FOR_THRESHOLD.get(t.unit, ())]

    def _thresholds(self, spec: PanelSpec) -> dash_b.ThresholdsConfig:
        steps: list[tuple[float | None, str]]
        if spec.steps:
            steps = list(spec.steps)
        else:
            limits = sorted(set(self._limits(spec)))
            if spec.below:
                # red under the (lowest) limit, green from it up
                steps = [(None, RED)] + [(v, GREEN) for v in limits[:1]]
            else:
                colours = [ORANGE, RED] if len(limits) > 1 else [RED]
                steps = [(None, GREEN)] + [(v, c) for v, c in zip(limits, colours)]
        return (
            dash_b.ThresholdsConfig()
            .mode(dash_m.ThresholdsMode.ABSOLUTE)
            .steps([dash_m.Threshold(value=v, color=c) for v, c in steps])
        )

    def _links(self, spec: PanelSpec) -> list[dash_b.DashboardLink]:
        names = ([spec.alert] if spec.alert else []) + list(spec.more_alerts)
        alerts = [self.alert(n) for n in names]
        return [
            dash_b.DashboardLink(f"{RUNBOOK_LINK_PREFIX}{alert.name}")
            .type(dash_m.DashboardLinkType.LINK)
            .url(self.config.runbook_url(alert))
            .tooltip(alert.summary)
            .target_blank(True)
            for alert in alerts
            if alert.enabled
        ]

    def _targets(self, spec: PanelSpec) -> list[prom_b.Dataquery]:
        out = []
        for i, q in enumerate(spec.queries):
            target = prom_b.Dataquery().expr(q.expr).ref_id(chr(ord("A") + i)).datasource(DS)
            target = target.legend_format(q.legend or "__auto")
            target = target.instant() if q.instant else target.range()
            if spec.kind == "table":  # one row per series, its labels as columns
                target = target.format(prom_m.PromQueryFormat.TABLE)
            out.append(target)
        return out

    def panel(self, spec: PanelSpec, panel_id: int) -> Any:
        kind = spec.kind
        builder: Any
        if kind == "timeseries":
            builder = (
                ts_b.Panel()
                .line_width(1)
                .fill_opacity(10)
                .show_points(common_m.VisibilityMode.NEVER)
                .legend(
                    common_b.VizLegendOptions()
                    .show_legend(True)
                    .display_mode(common_m.LegendDisplayMode.TABLE)
                    .placement(common_m.LegendPlacement.BOTTOM)
                    .calcs(["lastNotNull", "max"])
                )
                .tooltip(common_b.VizTooltipOptions().mode(common_m.TooltipDisplayMode.MULTI))
            )
            if self._limits(spec) or spec.steps:
                builder = builder.thresholds_style(
                    common_b.GraphThresholdsStyleConfig().mode(common_m.GraphThresholdsStyleMode.LINE)
                )
            if spec.stack:
                builder = builder.stacking(common_b.StackingConfig().mode(common_m.StackingMode.NORMAL))
        elif kind == "stat":
            builder = (
                stat_b.Panel()
                .graph_mode(common_m.BigValueGraphMode.AREA)
                .color_mode(common_m.BigValueColorMode.BACKGROUND)
                .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            )
        elif kind == "bargauge":
            builder = (
                bargauge_b.Panel()
                .display_mode(common_m.BarGaugeDisplayMode.GRADIENT)
                .orientation(common_m.VizOrientation.HORIZONTAL)
                .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            )
        elif kind == "table":
            builder = table_b.Panel().show_header(True)
        else:
            raise ValueError(f"unknown panel kind {kind!r}")
        builder = (
            builder.id(panel_id)
            .title(spec.title)
            .description(spec.description)
            .datasource(DS)
            .span(spec.width)
            .height(spec.height)
            .unit(spec.unit)
            .targets(self._targets(spec))
            .thresholds(self._thresholds(spec))
        )
        if spec.min is not None:
            builder = builder.min(spec.min)
        if spec.max is not None:
            builder = builder.max(spec.max)
        if spec.decimals is not None:
            builder = builder.decimals(spec.decimals)
        if spec.no_value is not None:
            builder = builder.no_value(spec.no_value)
        if spec.mappings:
            builder = builder.mappings(
                [
                    dash_m.ValueMap(
                        options={
                            value: dash_m.ValueMappingResult(text=text, color=colour, index=i)
                            for i, (value, (text, colour)) in enumerate(spec.mappings.items())
                        }
                    )
                ]
            )
        links = self._links(spec)
        if links:
            builder = builder.links(links)
        return builder

    # ── variables ───────────────────────────────────────────────────────────────────────────────
    def _query_var(self, name: str, query: str, label: str, description: str) -> dash_b.QueryVariable:
        return (
            dash_b.QueryVariable(name)
            .label(label)
            .description(description)
            .datasource(DS)
            .query({"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
            .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dash_m.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .current(dash_m.VariableOption(selected=True, text=["All"], value=["$__all"]))
        )

    def variables(self, probe: str, source: str, extra: Sequence[Var]) -> list[Any]:
        """datasource, job (from `probe` series matching the `source` selector), instance, extra."""
        job, inst = self.job, self.instance
        out: list[Any] = [
            dash_b.DatasourceVariable(DATASOURCE_VAR)
            .label("Data source")
            .description("Prometheus data source (provisioned as covet-prometheus)")
            .type("prometheus")
        ]
        out.append(
            self._query_var(
                job,
                f"label_values({series(probe, source)}, {job})",
                "Job",
                f"Prometheus job: service.name of the process (series of {probe.replace('|', ' or ')})",
            )
        )
        out.append(
            self._query_var(
                inst,
                f"label_values({series(probe, source, f'{job}=~{Q}${job}{Q}')}, {inst})",
                "Instance",
                "Process or server: service.instance.id (one per worker under pre-fork servers)",
            )
        )
        for v in extra:
            out.append(
                self._query_var(
                    v.name,
                    f"label_values({series(v.metric, self.sel()[1:-1])}, {v.label})",
                    v.name.capitalize(),
                    v.description,
                )
            )
        return out

    # ── dashboard ───────────────────────────────────────────────────────────────────────────────
    def dashboard(
        self,
        *,
        uid: str,
        title: str,
        description: str,
        groups: Sequence[str],
        probe: str,
        source: str,
        panels: Sequence[PanelSpec],
        variables: Sequence[Var] = (),
        time_from: str = "now-1h",
        refresh: str = "30s",
        extra_links: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        alerts = [a.name for g in groups for a in self.config.alerts_in_group(g) if a.enabled]
        builder = (
            dash_b.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags([TAG])
            .editable()
            .tooltip(dash_m.DashboardCursorSync.CROSSHAIR)
            .time(time_from, "now")
            .refresh(refresh)
            .timezone("browser")
            .variables(self.variables(probe, source, variables))
            .link(
                # the list reaches server dashboards too, whose jobs are not the apps': time only
                dash_b.DashboardLink("Covet dashboards")
                .type(dash_m.DashboardLinkType.DASHBOARDS)
                .tags([TAG])
                .as_dropdown(True)
                .include_vars(False)
                .keep_time(True)
            )
        )
        for link_title, link_uid in extra_links:
            builder = builder.link(
                dash_b.DashboardLink(link_title)
                .type(dash_m.DashboardLinkType.LINK)
                .url(f"/d/{link_uid}")
                .include_vars(same_jobs(uid, link_uid))
                .keep_time(True)
            )
        if alerts:
            builder = builder.annotation(
                dash_b.AnnotationQuery()
                .name("Firing alerts")
                .datasource(DS)
                .enable(True)
                .icon_color(RED)
                .expr(f'ALERTS{{alertstate="firing", alertname=~"{"|".join(sorted(alerts))}"}}')
            )
        for i, spec in enumerate(panels, start=1):
            builder = builder.with_panel(self.panel(spec, i))
        model = builder.build()
        return to_json(model)


Q = '"'
# dashboards of the collector-side servers: their job/instance are the servers', not the apps'
SERVER_DASHBOARDS = frozenset({"covet-postgresql", "covet-redis", "covet-collector"})


def same_jobs(uid: str, other: str) -> bool:
    """Whether a link from `uid` to `other` may carry the variables (job=shop means nothing on the
    Redis dashboard, and would empty it)."""
    return uid not in SERVER_DASHBOARDS and other not in SERVER_DASHBOARDS


def series(names: str, *matchers: str) -> str:
    """A series selector of one metric, or of several ("a|b": Grafana's label_values then lists
    the label's values over both, e.g. migrators that only report pending and jobs that only run)."""
    if "|" in names:
        return "{" + ", ".join([f'__name__=~"{names}"', *matchers]) + "}"
    return names + "{" + ", ".join(matchers) + "}"


def to_json(model: Any) -> dict[str, Any]:
    import json

    result: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    return result
