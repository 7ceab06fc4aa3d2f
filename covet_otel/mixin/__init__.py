"""The monitoring mixin: one definition (config.py) from which `covet-otel mixin build` writes the
Prometheus rules and Alertmanager config (alerts/), the Grafana dashboards (grafana/) and the
generated blocks of the runbooks (runbooks/). See docs/alerts.md."""

from .config import AlertDef, ConfigError, MixinConfig, Threshold, load_config

__all__ = ["AlertDef", "ConfigError", "MixinConfig", "Threshold", "load_config"]
