"""Responses in the `application/health+json` format (IETF draft "Health Check Response Format for
HTTP APIs"), the endpoint paths, and the token that unlocks details. Shared by the ASGI, WSGI and
standalone servers so that all three answer byte for byte the same.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .checks import FAIL, PASS

if TYPE_CHECKING:
    from .runner import CheckRun

CONTENT_TYPE = "application/health+json"
HEADERS: tuple[tuple[str, str], ...] = (("content-type", CONTENT_TYPE), ("cache-control", "no-store"))

ALL, LIVE, READY, STARTUP = "all", "live", "ready", "startup"

# Paths are matched after the mount prefix is removed; the /health forms also work when the app is
# mounted at the root of a server (the standalone server, or an ASGI server running it alone).
_ENDPOINTS = {
    "": ALL,
    "/": ALL,
    "/health": ALL,
    "/health/": ALL,
    "/live": LIVE,
    "/health/live": LIVE,
    "/ready": READY,
    "/health/ready": READY,
    "/startup": STARTUP,
    "/health/startup": STARTUP,
}


def endpoint_for(path: str) -> str | None:
    """ALL, LIVE, READY or STARTUP for a request path (after the mount prefix), None otherwise."""
    found = _ENDPOINTS.get(path)
    if found is None and path.endswith("/"):
        found = _ENDPOINTS.get(path.rstrip("/"))
    return found


def http_status(status: str) -> int:
    return 503 if status == FAIL else 200


def authorized(authorization: str | bytes | None, token: str | None) -> bool:
    """True when `Authorization: Bearer <token>` carries the configured token (none configured:
    nobody sees details)."""
    if not token or not authorization:
        return False
    if isinstance(authorization, str):
        authorization = authorization.encode("latin-1", "replace")
    scheme, _, given = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(given.strip(), token.encode())


def render(status: str, runs: Iterable[CheckRun] | None, detailed: bool, output: str | None = None) -> bytes:
    """The response body. Without `detailed` a check shows only its status, type and time: no
    componentId, observed values or output, since those can name hosts, users, versions or carry
    exception text."""
    body: dict[str, object] = {"status": status}
    if detailed and output:
        body["output"] = output
    if runs is not None:
        checks: dict[str, list[dict[str, object]]] = {}
        for run in runs:
            result = run.result
            entry: dict[str, object] = {
                "componentType": run.component_type,
                "status": result.status,
                "time": run.time,
            }
            if detailed:
                if result.component_id is not None:
                    entry["componentId"] = result.component_id
                if result.observed_value is not None:
                    entry["observedValue"] = result.observed_value
                    if result.observed_unit is not None:
                        entry["observedUnit"] = result.observed_unit
                if result.output and result.status != PASS:  # the draft: output only for warn/fail
                    entry["output"] = result.output
                entry["critical"] = run.critical
            checks.setdefault(run.name, []).append(entry)
        body["checks"] = checks
    return json.dumps(body, separators=(",", ":")).encode()


LIVE_BODY = render(PASS, None, False)
