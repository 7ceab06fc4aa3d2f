"""Entry points that `opentelemetry-instrument` loads: the distro and the configurator."""

from __future__ import annotations

import os
import sys
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator

from .configuration import configure
from .settings import SettingsError


class CovetDistro(BaseDistro):
    """Selects covet-otel's configurator when several are installed."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", "covet_otel")


class CovetConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        try:
            configure()
        except SettingsError as exc:
            # A telemetry setting the operator got wrong stops start-up loudly rather than
            # running the app unobserved. This runs inside sitecustomize, where SystemExit becomes
            # a "Fatal Python error" page; nothing of the app has run yet, so exit directly.
            print(f"covet-otel: {exc}", file=sys.stderr, flush=True)
            os._exit(2)
