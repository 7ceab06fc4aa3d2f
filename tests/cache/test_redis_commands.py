"""The command label and hit-rule tables (pure functions; the real-Redis tests cover the rest)."""

from __future__ import annotations

import pytest

from covet_otel.catalogue import get
from covet_otel.instrumentation.redis import error_type
from covet_otel.instrumentation.redis_commands import HIT_RULES, KNOWN_COMMANDS, command_label


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("GET", "GET"),
        ("get", "GET"),
        (b"MGET", "MGET"),
        ("CONFIG GET", "CONFIG"),
        ("JSON.GET", "JSON.GET"),
        ("user:1234", "other"),  # a key passed where a command goes never becomes a label
        ("GET" * 30, "other"),
        ("", "other"),
        (None, "other"),
        (42, "other"),
    ],
)
def test_command_label(raw, label) -> None:
    assert command_label(raw) == label


def test_every_hit_rule_command_is_known_and_documented() -> None:
    assert set(HIT_RULES) <= KNOWN_COMMANDS
    notes = get("covet_cache_hits_total").notes
    assert all(command in notes for command in HIT_RULES)
    assert get("covet_cache_misses_total").notes == notes


def test_rules_on_parsed_replies() -> None:
    assert HIT_RULES["GET"](b"", ("GET", "k")) == (1, 0)
    assert HIT_RULES["GET"](None, ("GET", "k")) == (0, 1)
    assert HIT_RULES["HGETALL"]({}, ("HGETALL", "h")) == (0, 1)
    assert HIT_RULES["HEXISTS"](False, ("HEXISTS", "h", "f")) == (0, 1)
    assert HIT_RULES["MGET"]([b"1", None, b"3"], ("MGET", "a", "b", "c")) == (2, 1)
    assert HIT_RULES["EXISTS"](2, ("EXISTS", "a", "a", "b")) == (2, 1)
    assert HIT_RULES["MGET"]("not a list", ("MGET", "a")) == (0, 0)  # unexpected reply: no count


def test_error_types() -> None:
    import redis.exceptions as rex

    assert error_type(rex.ConnectionError()) == "connection"
    assert error_type(rex.BusyLoadingError()) == "connection"
    assert error_type(ConnectionRefusedError()) == "connection"
    assert error_type(rex.TimeoutError()) == "timeout"
    assert error_type(TimeoutError()) == "timeout"
    assert error_type(rex.ResponseError("WRONGTYPE")) == "response"
    assert error_type(rex.WatchError()) == "other"
    assert error_type(ValueError()) == "other"
    try:
        try:
            raise rex.ConnectionError("lost")
        except rex.ConnectionError:
            raise rex.WatchError("A ConnectionError occurred while watching one or more keys")  # noqa: B904
    except rex.WatchError as exc:
        assert error_type(exc) == "connection"
    try:
        try:
            raise KeyError("the application's own, being handled")
        except KeyError:
            raise rex.WatchError("Watched variable changed.")  # noqa: B904
    except rex.WatchError as exc:
        assert error_type(exc) == "other"
