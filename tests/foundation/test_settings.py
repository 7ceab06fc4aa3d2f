"""COVET_* parsing: every bad value is named with what it accepts; nothing falls back silently."""

from __future__ import annotations

import logging

import pytest

from covet_otel.settings import Settings, SettingsError, load


def test_defaults_without_any_variable() -> None:
    assert load({}) == Settings()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"COVET_ENABLED": "off"}, {"enabled": False}),
        ({"COVET_DISK_PATHS": "/, /tmp"}, {"disk_paths": ("/", "/tmp")}),
        ({"COVET_PROMETHEUS_PORT": "0"}, {"prometheus_port": 0}),
        ({"COVET_DB_SLOW_QUERY_SECONDS": "0.25"}, {"db_slow_query_seconds": 0.25}),
        ({"COVET_HTTP_EXCLUDED_PATHS": ""}, {"http_excluded_paths": ()}),
        ({"COVET_HEALTH_TOKEN": "s3cret"}, {"health_token": "s3cret"}),
    ],
)
def test_valid_values(env: dict[str, str], expected: dict) -> None:
    settings = load(env)
    for attr, value in expected.items():
        assert getattr(settings, attr) == value


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COVET_ENABLED": "maybe"}, "COVET_ENABLED='maybe' is not valid: expected true/false"),
        ({"COVET_DISK_PATHS": "relative/path"}, "expected a comma-separated list of absolute paths"),
        ({"COVET_PROMETHEUS_PORT": "70000"}, "COVET_PROMETHEUS_PORT='70000' is not valid: expected a port"),
        ({"COVET_DB_LEAK_SECONDS": "-1"}, "COVET_DB_LEAK_SECONDS='-1' is not valid"),
        ({"COVET_DB_LEAK_SECONDS": "nan"}, "COVET_DB_LEAK_SECONDS='nan' is not valid"),
        ({"COVET_MAX_SERIES_PER_METRIC": "lots"}, "expected a positive integer"),
    ],
)
def test_bad_values_name_the_variable_and_accepted_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(env)


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load({"COVET_ENABLED": "x", "COVET_PROMETHEUS_PORT": "y"})
    assert "COVET_ENABLED" in str(info.value) and "COVET_PROMETHEUS_PORT" in str(info.value)


def test_a_bad_token_value_is_not_echoed() -> None:
    # an empty token is valid (unset); nothing makes the token itself appear in errors
    assert load({"COVET_HEALTH_TOKEN": ""}).health_token is None


def test_near_miss_names_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="covet_otel"):
        load({"COVET_DB_SLOW_QUERY_SECOND": "1", "COVET_DATABASE_URL": "postgres://x"})
    assert (
        "COVET_DB_SLOW_QUERY_SECOND is not a covet-otel setting; did you mean COVET_DB_SLOW_QUERY_SECONDS?"
        in (caplog.text)
    )
    assert "COVET_DATABASE_URL" not in caplog.text  # CovetPy's own settings share the prefix
