"""Panel queries as Grafana runs them: variable substitution and the PromQL facts the lint checks.

`substitute()` replaces Grafana's variables the way its Prometheus datasource does
(`$__rate_interval`, `$__range`, `$__interval`, multi-value `$job` as a regex alternation of
escaped values); `selectors()` parses the result with promql-parser (a real PromQL parser) and
returns every series selector with the function and range it sits in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from covet_otel.catalogue.external import EXTERNAL_SERIES

_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_REGEX_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}])")

RANGE_FUNCTIONS = {"rate", "irate", "increase", "delta", "idelta"}


def regex_escape(value: str) -> str:
    """A value escaped for a PromQL regex inside a double-quoted string (Grafana's
    prometheusSpecialRegexEscape)."""
    return _REGEX_SPECIAL.sub(r"\\\\\1", value)


def format_values(values: Sequence[str]) -> str:
    """A multi-value variable in a regex matcher: one escaped value, or (a|b|c)."""
    escaped = [regex_escape(v) for v in values]
    if len(escaped) == 1:
        return escaped[0]
    return "(" + "|".join(escaped) + ")"


def substitute(expr: str, variables: Mapping[str, Sequence[str] | str]) -> str:
    """Replace every $var, ${var} and [[var]]: a str is used as it is (built-ins such as
    $__rate_interval, or an All value), a sequence is formatted as Grafana formats a multi-value
    variable. An unknown variable is a KeyError naming it."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in variables:
            raise KeyError(f"variable ${name} has no value")
        value = variables[name]
        return value if isinstance(value, str) else format_values(value)

    return _VAR.sub(repl, expr)


def variable_names(expr: str) -> set[str]:
    return {m.group(1) or m.group(2) or m.group(3) for m in _VAR.finditer(expr)}


@dataclass(frozen=True)
class Selector:
    """One series selector of a query."""

    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value); op is =, !=, =~ or !~
    function: str | None  # the function whose argument it is (rate, last_over_time, ...)
    range: timedelta | None  # the [range] of a matrix selector

    def matcher(self, label: str) -> tuple[str, str] | None:
        for name, op, value in self.matchers:
            if name == label:
                return op, value
        return None


_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


def _op(op: Any) -> str:
    return _OPS.get(str(op), str(op))


def selectors(expr: str) -> list[Selector]:
    """Every series selector of `expr` (already substituted). Raises ValueError on a parse error."""
    import promql_parser

    try:
        tree = promql_parser.parse(expr)
    except Exception as exc:  # the parser raises its own error types
        raise ValueError(f"does not parse as PromQL: {exc}: {expr}") from None
    return list(_walk(tree, None))


def _walk(node: Any, function: str | None) -> Iterator[Selector]:
    import promql_parser as pp

    if isinstance(node, pp.VectorSelector):
        yield from _selectors_of(node, function, None)
    elif isinstance(node, pp.MatrixSelector):
        yield from _selectors_of(node.vector_selector, function, node.range)
    elif isinstance(node, pp.Call):
        for arg in node.args:
            yield from _walk(arg, node.func.name)
    elif isinstance(node, pp.BinaryExpr):
        yield from _walk(node.lhs, None)
        yield from _walk(node.rhs, None)
    elif isinstance(node, pp.AggregateExpr):
        yield from _walk(node.expr, None)
        if node.param is not None:
            yield from _walk(node.param, None)
    elif isinstance(node, (pp.ParenExpr, pp.UnaryExpr)):
        yield from _walk(node.expr, function)
    elif isinstance(node, pp.SubqueryExpr):
        yield from _walk(node.expr, None)


_NAME_ALTERNATIVES = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\|[a-zA-Z_:][a-zA-Z0-9_:]*)*$")


def _selectors_of(node: Any, function: str | None, rng: timedelta | None) -> Iterator[Selector]:
    """One Selector per metric the selector can match: its name, or each name of a
    `{__name__=~"a|b"}` alternation (any other __name__ matcher is reported as metric "")."""
    matchers = tuple((m.name, _op(m.op), m.value) for m in node.matchers.matchers if m.name != "__name__")
    names = [node.name] if node.name else []
    for m in node.matchers.matchers:
        if m.name == "__name__":
            op = _op(m.op)
            if op == "=":
                names.append(m.value)
            elif op == "=~" and _NAME_ALTERNATIVES.match(m.value):
                names += m.value.split("|")
            else:
                names.append("")
    for name in names or [""]:
        yield Selector(name, matchers, function, rng)


def metric_labels(name: str) -> tuple[str, ...] | None:
    """Labels a series of `name` may carry (None: any), or KeyError when the name is neither in
    the catalogue (histogram _bucket/_count/_sum included) nor a known Prometheus/collector series."""
    from covet_otel.catalogue import BY_NAME

    if name in EXTERNAL_SERIES:
        return EXTERNAL_SERIES[name]
    base, extra = name, ()
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name[: -len(suffix)] in BY_NAME:
            d = BY_NAME[name[: -len(suffix)]]
            if d.kind == "histogram":
                base, extra = d.name, (("le",) if suffix == "_bucket" else ())
                break
    if base not in BY_NAME:
        raise KeyError(f"{name} is not in the covet_otel catalogue")
    d = BY_NAME[base]
    if d.source == "rule":
        return d.label_names + extra  # a rule's labels are exactly those it aggregates by
    return ("job", "instance", *d.label_names, *extra)
