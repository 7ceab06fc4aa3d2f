"""Security counters, read from the process's /metrics endpoint."""

from __future__ import annotations

import logging

from covet_otel.events import (
    record_auth_failure,
    record_invalid_token,
    record_permission_denied,
    record_rate_limited,
)
from covet_otel.events.security import RATE_LIMIT_REASONS, TOKEN_TYPES


def nonzero(scraped, name: str) -> list[dict[str, str]]:
    """Label sets with a value (series of earlier tests stay exported at 0 after the reset)."""
    return [labels for labels in scraped.series(name) if scraped.value(name, **labels)]


def test_each_security_counter_counts_by_reason(metrics) -> None:
    record_rate_limited("ip")
    record_rate_limited("ip")
    record_rate_limited("api_key")
    record_permission_denied("missing_scope")
    record_invalid_token("csrf", "missing")
    record_invalid_token("jwt", "expired")
    record_invalid_token("jwt", "expired")

    scraped = metrics.scrape()
    assert scraped.value("covet_security_rate_limited_total", reason="ip") == 2
    assert scraped.value("covet_security_rate_limited_total", reason="api_key") == 1
    assert nonzero(scraped, "covet_security_rate_limited_total") == [{"reason": "ip"}, {"reason": "api_key"}]
    assert scraped.value("covet_security_permission_denied_total", reason="missing_scope") == 1
    assert scraped.value("covet_security_invalid_tokens_total", token_type="csrf", reason="missing") == 1
    assert scraped.value("covet_security_invalid_tokens_total", token_type="jwt", reason="expired") == 2
    assert scraped.types["covet_security_invalid_tokens"] == "counter"


def test_unknown_reasons_are_counted_as_other_and_logged_once(metrics, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="covet_otel")
    for _ in range(3):
        record_rate_limited("per-tenant-bucket")
    record_invalid_token("saml", "expired")
    record_permission_denied(None)  # type: ignore[arg-type]
    record_permission_denied(["not", "hashable"])  # type: ignore[arg-type]

    scraped = metrics.scrape()
    assert nonzero(scraped, "covet_security_rate_limited_total") == [{"reason": "other"}]
    assert scraped.value("covet_security_rate_limited_total", reason="other") == 3
    assert scraped.value("covet_security_invalid_tokens_total", token_type="other", reason="expired") == 1
    assert scraped.value("covet_security_permission_denied_total", reason="other") == 2
    warnings = [r.getMessage() for r in caplog.records if "per-tenant-bucket" in r.getMessage()]
    assert len(warnings) == 1
    assert "counted as 'other'" in warnings[0]


def test_auth_failures_are_the_http_instrumentation_function(metrics) -> None:
    from covet_otel.instrumentation.http import auth

    assert record_auth_failure is auth.record_auth_failure
    record_auth_failure("bad_password")
    assert metrics.scrape().value("covet_app_auth_failures_total", reason="bad_password") == 1


def test_reason_sets_come_from_the_catalogue() -> None:
    assert RATE_LIMIT_REASONS == ("ip", "user", "api_key", "endpoint", "global", "other")
    assert "csrf" in TOKEN_TYPES
