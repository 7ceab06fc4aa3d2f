"""The names README and the guides promise on `covet_otel` itself."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import covet_otel


@pytest.mark.parametrize("name", sorted(covet_otel._LAZY))
def test_lazy_public_names_resolve_to_the_documented_objects(name: str) -> None:
    target = covet_otel._LAZY[name]
    module_name, attr = target if isinstance(target, tuple) else (target, name)
    assert getattr(covet_otel, name) is getattr(importlib.import_module(module_name), attr)


def test_the_top_level_names_do_what_the_guides_say(metrics) -> None:
    """One real call of each recording name on `covet_otel`, read back from /metrics."""
    covet_otel.record_auth_failure("expired_token")
    covet_otel.record_rate_limited("login")
    covet_otel.record_permission_denied("admin_only")
    covet_otel.record_invalid_token("jwt", "expired")
    event = covet_otel.declare_business_event("api_signup", currency="EUR")
    event.add_value(12.5)
    covet_otel.record_business_event("api_signup", 2)
    covet_otel.set_pending_migrations(3, "alembic")
    with covet_otel.backup("api_nightly") as run:
        run.size = 4096
    with covet_otel.track_migration("alembic"):
        pass
    samples = metrics.scrape()
    assert samples.value("covet_app_auth_failures_total", reason="expired_token") == 1
    assert samples.value("covet_business_events_total", event="api_signup") == 2
    assert samples.value("covet_business_value_total", event="api_signup", currency="EUR") == 12.5
    assert samples.value("covet_migration_pending", migrator="alembic") == 3
    assert samples.value("covet_backup_size_bytes", backup="api_nightly") == 4096
    assert samples.value("covet_backup_runs_total", backup="api_nightly", outcome="success") == 1
    assert samples.value("covet_migration_runs_total", migrator="alembic", outcome="success") == 1
    security = {n for n in samples.names() if n.startswith("covet_security_")}
    assert sum(samples.total(n) for n in security if n.endswith("_total")) == 3

    registry = covet_otel.HealthRegistry(cache_seconds=1, timeout=1)
    covet_otel.register_check("api:module", lambda: True, critical=False)
    try:
        from covet_otel import health

        assert [c.name for c in health.registry.checks if c.name == "api:module"] == ["api:module"]
    finally:
        health.registry.remove("api:module")
    registry.register("api:ok", lambda: True)
    with covet_otel.serve_health(0, registry=registry) as server:
        import httpx

        assert httpx.get(server.url + "/health/ready", timeout=5).json()["status"] == "pass"
    assert type(covet_otel.health_asgi_app(registry)).__name__ == "HealthASGIApp"
    assert type(covet_otel.health_wsgi_app(registry)).__name__ == "HealthWSGIApp"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        covet_otel.nope  # noqa: B018


def test_importing_covet_otel_does_not_import_the_recording_modules() -> None:
    code = "import sys, covet_otel; print(sorted(m for m in sys.modules if m.startswith('covet_otel.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "covet_otel.events" not in out and "covet_otel.health" not in out
