"""The application's own authentication-failure reasons."""

from __future__ import annotations

import logging

from ._core import CURRENT, auth_series

_logger = logging.getLogger("covet_otel")


def record_auth_failure(reason: str) -> None:
    """Count one authentication or authorisation failure in `covet_app_auth_failures_total`.

    `reason` is one of the catalogue's values (`bad_password`, `unknown_user`, `expired_token`,
    `invalid_token`, `missing_credentials`, `mfa_failed`, `locked_out`, `unauthorized`,
    `forbidden`); anything else is counted as `other`.

    Inside a measured HTTP request the request counts once: the first reason recorded replaces the
    automatic `unauthorized`/`forbidden` count of a 401/403 response, and later calls during the
    same request are ignored. Outside a request (a background job, a message consumer) every call
    counts.
    """
    try:
        request = CURRENT.get()
        if request is not None:
            if request.auth_recorded:
                return
            request.auth_recorded = True
        auth_series(reason if isinstance(reason, str) else str(reason)).add(1)
    except Exception:  # telemetry never breaks the caller
        _logger.debug("covet-otel: record_auth_failure failed", exc_info=True)
