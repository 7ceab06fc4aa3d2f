"""The OTel resource of a covet-otel process: who is sending these metrics."""

from __future__ import annotations

import os
import re
import sys
import uuid

from opentelemetry.sdk.resources import (
    OTEL_SERVICE_NAME,
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    Resource,
)

from ..version import __version__

_APP_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.()]*$")
_LAUNCHERS = {
    "opentelemetry-instrument",
    "gunicorn",
    "uvicorn",
    "hypercorn",
    "celery",
    "pytest",
    "covet-otel",
}


def program_name(argv: list[str] | None = None) -> str:
    """A service name derived from how the program was started (never `unknown_service`).

    `python app.py` gives `app`, `python -m worker` gives `worker`, `uvicorn shop.main:app`
    gives `shop.main`; launchers and interpreters are passed over.
    """
    args = list(argv) if argv is not None else list(getattr(sys, "orig_argv", None) or sys.argv)
    for arg in args[1:]:
        if _APP_SPEC.match(arg):  # module:attribute, as uvicorn, gunicorn and hypercorn take it
            return arg.split(":")[0]
    skip = False
    for i, arg in enumerate(args):
        if skip or not arg:
            skip = False
            continue
        if arg == "-c":
            skip = True
            continue
        if arg.startswith("-") or not any(c.isalpha() for c in arg):
            continue
        stem = os.path.basename(arg.rstrip("/")).split(":")[0].removesuffix(".py")
        if i == 0 and stem.startswith("python"):
            continue
        if stem and stem not in _LAUNCHERS and stem != "__main__" and not stem.startswith("python"):
            return stem
    return "python"


def new_instance_id() -> str:
    return str(uuid.uuid4())


def build(environ: dict[str, str] | os._Environ[str] | None = None) -> Resource:
    """Resource from OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME, filled in where they are silent."""
    env = os.environ if environ is None else environ
    detected = Resource.create()  # reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME
    attrs: dict[str, str] = {
        "telemetry.distro.name": "covet-otel",
        "telemetry.distro.version": __version__,
        SERVICE_INSTANCE_ID: new_instance_id(),
    }
    name = detected.attributes.get(SERVICE_NAME)
    if not env.get(OTEL_SERVICE_NAME) and (not name or str(name).startswith("unknown_service")):
        attrs[SERVICE_NAME] = program_name()
    # what the user set explicitly wins over what is derived here
    given = {
        k: v
        for k, v in detected.attributes.items()
        if not (k == SERVICE_NAME and str(v).startswith("unknown_service") and SERVICE_NAME in attrs)
    }
    return Resource(attrs).merge(Resource(given, detected.schema_url))
