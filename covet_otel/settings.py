"""Every COVET_* setting: parsed and validated here, and nowhere else.

A bad value is a start-up error that names the variable and what it accepts; no setting falls
back to a default silently. Standard OTEL_* variables are read where the SDK reads them.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

_logger = logging.getLogger("covet_otel")


class SettingsError(ValueError):
    """A COVET_* variable has a value that covet-otel cannot use."""


@dataclass(frozen=True)
class _Spec:
    env: str
    default: Any
    parse: Callable[[str], Any]
    accepts: str
    help: str


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


# Numbers are plain ASCII decimals. Python's int() and float() also take "1_000", full-width or
# Arabic-Indic digits, "1e10", "inf" and "nan": a value that reads differently to a person than
# to the parser, or one far outside what the runtime can use, is refused, never clamped.
_INTEGER = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        text = raw.strip(" \t\r\n")
        if not _INTEGER.fullmatch(text):
            raise ValueError(raw)
        value = int(text)
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return parse


def _seconds(low: float, high: float) -> Callable[[str], float]:
    """A decimal number of seconds with low < value <= high (low itself is refused: 0 s is no
    threshold, no timeout, no cache)."""

    def parse(raw: str) -> float:
        text = raw.strip(" \t\r\n")
        if not _DECIMAL.fullmatch(text):
            raise ValueError(raw)
        value = float(text)
        if not low < value <= high:
            raise ValueError(raw)
        return value

    return parse


PORT_RANGE = (0, 65535)
MAX_SERIES_RANGE = (1, 1_000_000)
# Ranges of the seconds settings (exclusive low, inclusive high), quoted in docs/settings.md.
SLOW_QUERY_RANGE = (0.0, 86_400.0)
LEAK_RANGE = (0.0, 604_800.0)
HEALTH_CACHE_RANGE = (0.0, 3_600.0)
# A probe waits for its checks: beyond 5 minutes no kubelet or load balancer is still listening,
# and far larger values overflow the event loop's and threading's timeouts.
HEALTH_TIMEOUT_RANGE = (0.0, 300.0)  # also the bound of a check's own timeout (health.checks)


_port = parse_port = _integer(*PORT_RANGE)


def _optional_port(raw: str) -> int | None:
    return _port(raw) if raw.strip() else None


def _whole(limits: tuple[int, int]) -> str:
    return f"a whole number, {limits[0]}-{limits[1]}"


def _span(limits: tuple[float, float]) -> str:
    return f"seconds, more than {limits[0]:g} and at most {limits[1]:g} (a decimal such as 0.25)"


def _paths(raw: str) -> tuple[str, ...]:
    items = tuple(p.strip() for p in raw.split(",") if p.strip())
    if not items or not all(os.path.isabs(p) for p in items):
        raise ValueError(raw)
    return items


def _names(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def host(raw: str) -> str:
    """An IP address or an ASCII host name (RFC 1123: labels of 1-63 letters, digits and '-', 253
    characters at most). Anything else would fail only later, inside the socket layer's IDNA
    encoding, where it reads as a generic failure."""
    value = raw.strip()
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253 or not name.isascii():
        raise ValueError(raw)
    if not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError(raw)
    return value


# RFC 6750 b64token: what an `Authorization: Bearer` header can carry unchanged.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _optional_secret(raw: str) -> str | None:
    if not raw:
        return None
    if not _TOKEN.fullmatch(raw):
        raise ValueError("<hidden>")  # never the value: it is a secret, even when mistyped
    return raw


_SPECS: dict[str, _Spec] = {
    "enabled": _Spec(
        "COVET_ENABLED",
        True,
        _bool,
        "true/false (1/0, yes/no, on/off)",
        "Master switch: false leaves the process untouched.",
    ),
    "system_metrics": _Spec(
        "COVET_SYSTEM_METRICS",
        True,
        _bool,
        "true/false",
        "Collect the system group (host and process figures).",
    ),
    "disk_paths": _Spec(
        "COVET_DISK_PATHS",
        ("/",),
        _paths,
        "a comma-separated list of absolute paths",
        "Filesystems reported by covet_disk_usage_bytes / covet_disk_total_bytes.",
    ),
    "prometheus_host": _Spec(
        "COVET_PROMETHEUS_HOST",
        "127.0.0.1",
        host,
        "an IP address, or an ASCII host name (RFC 1123, at most 253 characters)",
        "Address of the embedded /metrics endpoint (OTEL_EXPORTER_PROMETHEUS_HOST wins).",
    ),
    "prometheus_port": _Spec(
        "COVET_PROMETHEUS_PORT",
        9464,
        _port,
        f"a port number, {PORT_RANGE[0]}-{PORT_RANGE[1]} (0: any free port)",
        "Port of the embedded /metrics endpoint (OTEL_EXPORTER_PROMETHEUS_PORT wins).",
    ),
    "max_series": _Spec(
        "COVET_MAX_SERIES_PER_METRIC",
        2000,
        _integer(*MAX_SERIES_RANGE),
        _whole(MAX_SERIES_RANGE),
        "Series per metric before new label sets are folded into one `other` series.",
    ),
    "db_slow_query_seconds": _Spec(
        "COVET_DB_SLOW_QUERY_SECONDS",
        1.0,
        _seconds(*SLOW_QUERY_RANGE),
        _span(SLOW_QUERY_RANGE),
        "Statements slower than this count in covet_db_slow_queries_total.",
    ),
    "db_leak_seconds": _Spec(
        "COVET_DB_LEAK_SECONDS",
        60.0,
        _seconds(*LEAK_RANGE),
        _span(LEAK_RANGE),
        "A pool connection held longer than this counts as leaked (once).",
    ),
    "http_excluded_paths": _Spec(
        "COVET_HTTP_EXCLUDED_PATHS",
        ("/metrics", "/health"),
        _names,
        "a comma-separated list of paths (empty for none)",
        "Requests to these paths, or below them on a `/` boundary, are not measured: `/health` "
        "excludes `/health/ready`, not `/healthz`.",
    ),
    "health_token": _Spec(
        "COVET_HEALTH_TOKEN",
        None,
        _optional_secret,
        "letters, digits and - . _ ~ + / (then = padding): a Bearer token (RFC 6750)",
        "Bearer token that unlocks detailed health responses; unset: statuses only.",
    ),
    "health_port": _Spec(
        "COVET_HEALTH_PORT",
        None,
        _optional_port,
        f"a port number, {PORT_RANGE[0]}-{PORT_RANGE[1]} (0: any free port), or empty for none",
        "Serve /health, /health/live, /health/ready and /health/startup on this port with checks "
        "found automatically (asyncpg pools, Redis servers, disk, memory): health probes without "
        "code changes. Unset: not served.",
    ),
    "health_host": _Spec(
        "COVET_HEALTH_HOST",
        "0.0.0.0",
        host,
        "an IP address, or an ASCII host name (RFC 1123, at most 253 characters)",
        "Address of the COVET_HEALTH_PORT server: all interfaces, since a kubelet probes the pod "
        "IP; without COVET_HEALTH_TOKEN it shows statuses only.",
    ),
    "health_cache_seconds": _Spec(
        "COVET_HEALTH_CACHE_SECONDS",
        2.0,
        _seconds(*HEALTH_CACHE_RANGE),
        _span(HEALTH_CACHE_RANGE),
        "How long a round of health check results is reused.",
    ),
    "health_timeout_seconds": _Spec(
        "COVET_HEALTH_TIMEOUT_SECONDS",
        2.0,
        _seconds(*HEALTH_TIMEOUT_RANGE),
        _span(HEALTH_TIMEOUT_RANGE),
        "Default per-check timeout.",
    ),
}


@dataclass(frozen=True)
class Settings:
    enabled: bool = True
    system_metrics: bool = True
    disk_paths: tuple[str, ...] = ("/",)
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9464
    max_series: int = 2000
    db_slow_query_seconds: float = 1.0
    db_leak_seconds: float = 60.0
    http_excluded_paths: tuple[str, ...] = ("/metrics", "/health")
    health_token: str | None = field(default=None, repr=False)
    health_port: int | None = None
    health_host: str = "0.0.0.0"
    health_cache_seconds: float = 2.0
    health_timeout_seconds: float = 2.0


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every COVET_* variable; raise SettingsError listing every bad one."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    errors: list[str] = []
    for attr, spec in _SPECS.items():
        raw = env.get(spec.env)
        if raw is None:
            continue
        try:
            values[attr] = spec.parse(raw)
        except (ValueError, TypeError):
            errors.append(
                f"{spec.env}={shown(raw, attr == 'health_token')} is not valid: expected {spec.accepts}"
            )
    if errors:
        raise SettingsError("; ".join(errors))
    _warn_near_misses(env)
    return Settings(**values)


def shown(raw: str, secret: bool = False) -> str:
    """A rejected value as an error message quotes it: hidden when secret, shortened when long
    (a pasted certificate or a runaway template must not fill the log)."""
    if secret:
        return "<hidden>"
    if len(raw) <= 80:
        return repr(raw)
    return repr(raw[:77])[:-1] + "…" + repr(raw[:77])[-1]


def _warn_near_misses(env: Mapping[str, str]) -> None:
    # COVET_ is also the prefix of the CovetPy framework's own settings, so unknown names are
    # not errors; a name one typo away from ours is almost certainly meant as ours.
    known = [spec.env for spec in _SPECS.values()]
    for name in env:
        if name.startswith("COVET_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if close:
                _logger.warning("%s is not a covet-otel setting; did you mean %s?", name, close[0])


def describe_accepts(attr: str) -> str:
    """What a setting accepts, for errors about the standard variables that override it."""
    return _SPECS[attr].accepts


def describe() -> list[dict[str, str]]:
    """Name, default, accepted values and purpose of every setting, for docs and the CLI."""
    defaults = {f.name: f.default for f in fields(Settings)}
    return [
        {
            "env": spec.env,
            "default": _show_default(defaults[attr]),
            "accepts": spec.accepts,
            "help": spec.help,
        }
        for attr, spec in _SPECS.items()
    ]


def as_markdown() -> str:
    """docs/settings.md: generated from the specs above (`covet-otel settings --format markdown`)."""
    lines = [
        "# Settings",
        "",
        "<!-- Generated by `covet-otel settings --format markdown`; do not edit by hand. -->",
        "",
        "covet-otel's own settings are `COVET_*` environment variables. A value that cannot be used "
        "stops start-up with an error naming the variable and what it accepts. Standard `OTEL_*` "
        "variables (exporter, endpoint, interval, resource, service name) keep their meaning and "
        "win where both exist; see docs/configuration.md.",
        "",
        "Numbers are plain ASCII decimals (`0.25`, `2000`) within the range shown: a sign, an exponent "
        "(`1e10`), `_` separators, non-ASCII digits, `inf` and `nan` are refused, and so is a value "
        "outside its range; nothing is clamped.",
        "",
        "| Variable | Default | Accepts | Meaning |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{r['env']}` | `{r['default']}` | {r['accepts']} | {r['help']} |" for r in describe()]
    return "\n".join(lines) + "\n"


def _show_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


_current: Settings | None = None


def current() -> Settings:
    """The settings in force: loaded once, on first use (configure() loads them eagerly)."""
    global _current
    if _current is None:
        _current = load()
    return _current


def set_current(settings: Settings) -> None:
    global _current
    _current = settings
