"""Every COVET_* setting: parsed and validated here, and nowhere else.

A bad value is a start-up error that names the variable and what it accepts; no setting falls
back to a default silently. Standard OTEL_* variables are read where the SDK reads them.
"""

from __future__ import annotations

import difflib
import logging
import os
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


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(raw)
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(raw)
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError(raw)
    return value


def _paths(raw: str) -> tuple[str, ...]:
    items = tuple(p.strip() for p in raw.split(",") if p.strip())
    if not items or not all(os.path.isabs(p) for p in items):
        raise ValueError(raw)
    return items


def _names(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _nonempty(raw: str) -> str:
    if not raw.strip():
        raise ValueError(raw)
    return raw.strip()


def _optional_secret(raw: str) -> str | None:
    return raw or None


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
        _nonempty,
        "a host name or IP address",
        "Address of the embedded /metrics endpoint (OTEL_EXPORTER_PROMETHEUS_HOST wins).",
    ),
    "prometheus_port": _Spec(
        "COVET_PROMETHEUS_PORT",
        9464,
        _port,
        "a port number 0-65535",
        "Port of the embedded /metrics endpoint (OTEL_EXPORTER_PROMETHEUS_PORT wins).",
    ),
    "max_series": _Spec(
        "COVET_MAX_SERIES_PER_METRIC",
        2000,
        _positive_int,
        "a positive integer",
        "Series per metric before new label sets are folded into one `other` series.",
    ),
    "db_slow_query_seconds": _Spec(
        "COVET_DB_SLOW_QUERY_SECONDS",
        1.0,
        _positive_float,
        "a positive number of seconds",
        "Statements slower than this count in covet_db_slow_queries_total.",
    ),
    "db_leak_seconds": _Spec(
        "COVET_DB_LEAK_SECONDS",
        60.0,
        _positive_float,
        "a positive number of seconds",
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
        "any non-empty string",
        "Bearer token that unlocks detailed health responses; unset: statuses only.",
    ),
    "health_cache_seconds": _Spec(
        "COVET_HEALTH_CACHE_SECONDS",
        2.0,
        _positive_float,
        "a positive number of seconds",
        "How long a round of health check results is reused.",
    ),
    "health_timeout_seconds": _Spec(
        "COVET_HEALTH_TIMEOUT_SECONDS",
        2.0,
        _positive_float,
        "a positive number of seconds",
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
            shown = "<hidden>" if attr == "health_token" else repr(raw)
            errors.append(f"{spec.env}={shown} is not valid: expected {spec.accepts}")
    if errors:
        raise SettingsError("; ".join(errors))
    _warn_near_misses(env)
    return Settings(**values)


def _warn_near_misses(env: Mapping[str, str]) -> None:
    # COVET_ is also the prefix of the CovetPy framework's own settings, so unknown names are
    # not errors; a name one typo away from ours is almost certainly meant as ours.
    known = [spec.env for spec in _SPECS.values()]
    for name in env:
        if name.startswith("COVET_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if close:
                _logger.warning("%s is not a covet-otel setting; did you mean %s?", name, close[0])


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
