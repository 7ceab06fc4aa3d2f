"""COVET_* parsing: every bad value is named with what it accepts; nothing falls back silently."""

from __future__ import annotations

import logging
import re

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
        ({"COVET_HEALTH_TOKEN": "YWJj+/d-e.f_g~h=="}, {"health_token": "YWJj+/d-e.f_g~h=="}),
        ({"COVET_HEALTH_TOKEN": ""}, {"health_token": None}),
        # the edges of every documented range are accepted, and surrounding blanks are not part
        # of a number
        ({"COVET_PROMETHEUS_PORT": "65535"}, {"prometheus_port": 65535}),
        ({"COVET_MAX_SERIES_PER_METRIC": "1"}, {"max_series": 1}),
        ({"COVET_MAX_SERIES_PER_METRIC": " 1000000\n"}, {"max_series": 1_000_000}),
        ({"COVET_HEALTH_TIMEOUT_SECONDS": "300"}, {"health_timeout_seconds": 300.0}),
        ({"COVET_HEALTH_TIMEOUT_SECONDS": ".5"}, {"health_timeout_seconds": 0.5}),
        ({"COVET_HEALTH_CACHE_SECONDS": "3600"}, {"health_cache_seconds": 3600.0}),
        ({"COVET_DB_SLOW_QUERY_SECONDS": "86400"}, {"db_slow_query_seconds": 86400.0}),
        ({"COVET_DB_LEAK_SECONDS": "604800"}, {"db_leak_seconds": 604800.0}),
        ({"COVET_PROMETHEUS_HOST": "0.0.0.0"}, {"prometheus_host": "0.0.0.0"}),
        ({"COVET_PROMETHEUS_HOST": "::1"}, {"prometheus_host": "::1"}),
        (
            {"COVET_PROMETHEUS_HOST": "metrics-1.pod.cluster.local"},
            {"prometheus_host": "metrics-1.pod.cluster.local"},
        ),
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
        (
            {"COVET_PROMETHEUS_PORT": "9_464"},
            "COVET_PROMETHEUS_PORT='9_464' is not valid: expected a port number, 0-65535",
        ),
        ({"COVET_DB_LEAK_SECONDS": "-1"}, "COVET_DB_LEAK_SECONDS='-1' is not valid"),
        ({"COVET_DB_LEAK_SECONDS": "nan"}, "COVET_DB_LEAK_SECONDS='nan' is not valid"),
        ({"COVET_DB_LEAK_SECONDS": "inf"}, "COVET_DB_LEAK_SECONDS='inf' is not valid"),
        (
            {"COVET_MAX_SERIES_PER_METRIC": "lots"},
            "COVET_MAX_SERIES_PER_METRIC='lots' is not valid: expected a whole number, 1-1000000",
        ),
        # issue 17, point 6: accepted before, unusable at run time
        (
            {"COVET_HEALTH_TIMEOUT_SECONDS": "1e10"},
            "COVET_HEALTH_TIMEOUT_SECONDS='1e10' is not valid: expected seconds, more than 0 and at most 300",
        ),
        ({"COVET_HEALTH_TIMEOUT_SECONDS": "300.5"}, "COVET_HEALTH_TIMEOUT_SECONDS='300.5' is not valid"),
        ({"COVET_HEALTH_TIMEOUT_SECONDS": "0"}, "COVET_HEALTH_TIMEOUT_SECONDS='0' is not valid"),
        (
            {"COVET_HEALTH_CACHE_SECONDS": "3601"},
            "COVET_HEALTH_CACHE_SECONDS='3601' is not valid: expected seconds, more than 0 and at most 3600",
        ),
        ({"COVET_MAX_SERIES_PER_METRIC": "1e32"}, "COVET_MAX_SERIES_PER_METRIC='1e32' is not valid"),
        (
            {"COVET_MAX_SERIES_PER_METRIC": "1" + "0" * 32},
            f"COVET_MAX_SERIES_PER_METRIC='1{'0' * 32}' is not valid",
        ),
        ({"COVET_MAX_SERIES_PER_METRIC": "1000001"}, "COVET_MAX_SERIES_PER_METRIC='1000001' is not valid"),
        ({"COVET_MAX_SERIES_PER_METRIC": "1_000"}, "COVET_MAX_SERIES_PER_METRIC='1_000' is not valid"),
        (
            {"COVET_MAX_SERIES_PER_METRIC": "\uff11\uff10\uff10\uff10"},
            "COVET_MAX_SERIES_PER_METRIC='１０００' is not valid",
        ),
        ({"COVET_MAX_SERIES_PER_METRIC": "+5"}, "COVET_MAX_SERIES_PER_METRIC='+5' is not valid"),
        ({"COVET_DB_SLOW_QUERY_SECONDS": "\u0660.5"}, "COVET_DB_SLOW_QUERY_SECONDS='٠.5' is not valid"),
        ({"COVET_DB_SLOW_QUERY_SECONDS": "1_0"}, "COVET_DB_SLOW_QUERY_SECONDS='1_0' is not valid"),
        # issue 17, point 5: names the socket layer would choke on later
        (
            {"COVET_PROMETHEUS_HOST": "m\u00e9triques.local"},
            "COVET_PROMETHEUS_HOST='métriques.local' is not valid: expected an IP address, or an ASCII",
        ),
        (
            {"COVET_PROMETHEUS_HOST": "a" * 64 + ".example"},
            "COVET_PROMETHEUS_HOST='" + "a" * 64 + ".example' is not valid",
        ),
        ({"COVET_PROMETHEUS_HOST": "a." * 130}, "is not valid: expected an IP address"),
        ({"COVET_PROMETHEUS_HOST": "bad_name"}, "COVET_PROMETHEUS_HOST='bad_name' is not valid"),
    ],
)
def test_bad_values_name_the_variable_and_accepted_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load(env)


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load({"COVET_ENABLED": "x", "COVET_PROMETHEUS_PORT": "y"})
    assert "COVET_ENABLED" in str(info.value) and "COVET_PROMETHEUS_PORT" in str(info.value)


@pytest.mark.parametrize("token", ["zq9Secret withSpace", "zq9S\u00e9cret", "zq9Tok\nzq9En", "zq9a=zq9b"])
def test_a_bad_token_value_is_not_echoed(token: str) -> None:
    with pytest.raises(SettingsError) as info:
        load({"COVET_HEALTH_TOKEN": token, "COVET_ENABLED": "maybe"})
    message = str(info.value)
    assert "COVET_HEALTH_TOKEN=<hidden> is not valid: expected letters, digits" in message
    assert "COVET_ENABLED='maybe' is not valid" in message  # the other errors are still shown
    assert "zq9" not in message


def test_a_long_bad_value_is_shortened_in_the_error() -> None:
    with pytest.raises(SettingsError) as info:
        load({"COVET_DISK_PATHS": "x" * 5000})
    message = str(info.value)
    assert message.startswith("COVET_DISK_PATHS='" + "x" * 77 + "…' is not valid")
    assert len(message) < 200


def test_docs_show_every_numeric_range() -> None:
    from covet_otel.settings import as_markdown

    rows = {
        line.split("|")[1].strip(): line.split("|")[3].strip()
        for line in as_markdown().splitlines()
        if line.startswith("| `COVET_")
    }
    assert rows["`COVET_PROMETHEUS_PORT`"].startswith("a port number, 0-65535")
    assert rows["`COVET_MAX_SERIES_PER_METRIC`"] == "a whole number, 1-1000000"
    assert rows["`COVET_HEALTH_TIMEOUT_SECONDS`"].startswith("seconds, more than 0 and at most 300 ")
    assert rows["`COVET_HEALTH_CACHE_SECONDS`"].startswith("seconds, more than 0 and at most 3600 ")
    assert rows["`COVET_DB_SLOW_QUERY_SECONDS`"].startswith("seconds, more than 0 and at most 86400 ")
    assert rows["`COVET_DB_LEAK_SECONDS`"].startswith("seconds, more than 0 and at most 604800 ")


def test_near_miss_names_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="covet_otel"):
        load({"COVET_DB_SLOW_QUERY_SECOND": "1", "COVET_DATABASE_URL": "postgres://x"})
    assert (
        "COVET_DB_SLOW_QUERY_SECOND is not a covet-otel setting; did you mean COVET_DB_SLOW_QUERY_SECONDS?"
        in (caplog.text)
    )
    assert "COVET_DATABASE_URL" not in caplog.text  # CovetPy's own settings share the prefix
