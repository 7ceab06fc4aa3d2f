"""redis-py sync client on a real Redis: every figure read back from the scraped /metrics text."""

from __future__ import annotations

import pytest
import redis
from covet_fixtures import Samples

import covet_otel.instrumentation.redis as covet_redis
from covet_otel.catalogue import SECONDS_BUCKETS

DURATION = "covet_cache_operation_duration_seconds"


def calls(samples: Samples, command: str, outcome: str = "success") -> float:
    return samples.get(f"{DURATION}_count", command=command, outcome=outcome)


def nonzero(samples: Samples, name: str) -> dict[str, float]:
    """command -> value of the non-zero series (series of earlier tests stay, zeroed)."""
    out = {}
    for (sample, labels), value in samples.samples.items():
        if sample == name and value:
            out[dict(labels)["command"]] = value
    return out


def hits(samples: Samples, command: str) -> float:
    return samples.value("covet_cache_hits_total", command=command)


def misses(samples: Samples, command: str) -> float:
    return samples.value("covet_cache_misses_total", command=command)


def test_set_then_get_is_one_hit(client, metrics) -> None:
    client.set("user:42", "x")
    assert client.get("user:42") == b"x"
    samples = metrics.scrape()
    assert hits(samples, "GET") == 1
    assert misses(samples, "GET") == 0
    assert calls(samples, "SET") == 1
    assert calls(samples, "GET") == 1
    # the duration is a second-scale histogram with exactly the catalogue's labels
    assert samples.types[DURATION] == "histogram"
    buckets = [s for s in samples.series(f"{DURATION}_bucket") if s["command"] == "GET"]
    assert {b["le"] for b in buckets} == {*(str(float(b)) for b in SECONDS_BUCKETS), "+Inf"}
    assert set(samples.series(f"{DURATION}_count")[0]) == {"command", "outcome"}
    assert samples.value(f"{DURATION}_bucket", command="GET", outcome="success", le="+Inf") == 1
    assert 0 < samples.value(f"{DURATION}_sum", command="GET", outcome="success") < 1
    # a write has no hit rule, so no hit or miss series
    assert not any(s["command"] == "SET" for s in samples.series("covet_cache_hits_total"))
    assert nonzero(samples, "covet_cache_hits_total") == {"GET": 1}


def test_get_missing_is_one_miss(client, metrics) -> None:
    assert client.get("nothing-here") is None
    samples = metrics.scrape()
    assert hits(samples, "GET") == 0
    assert misses(samples, "GET") == 1


def test_mget_three_keys_two_present(client, metrics) -> None:
    client.mset({"a": 1, "c": 3})
    assert client.mget("a", "b", "c") == [b"1", None, b"3"]
    samples = metrics.scrape()
    assert hits(samples, "MGET") == 2
    assert misses(samples, "MGET") == 1
    assert calls(samples, "MGET") == 1
    assert nonzero(samples, "covet_cache_hits_total") == {"MGET": 2}


def test_hit_rule_of_other_reads(client, metrics) -> None:
    client.set("empty", "")  # an empty string is a stored value: a hit
    client.hset("h", mapping={"f1": "v", "f2": "w"})
    client.sadd("s", "m")
    client.zadd("z", {"m": 1.5})
    client.rpush("l", "x")
    assert client.get("empty") == b""
    assert client.getex("empty", ex=100) == b""
    assert client.getdel("absent") is None
    assert client.hget("h", "f1") == b"v"
    assert client.hget("h", "nope") is None
    assert client.hmget("h", ["f1", "f2", "f3", "f4"]) == [b"v", b"w", None, None]
    assert client.hgetall("h") == {b"f1": b"v", b"f2": b"w"}
    assert client.hgetall("no-hash") == {}
    assert client.hexists("h", "f2") is True
    assert client.smembers("s") == {b"m"}
    assert client.smembers("no-set") == set()
    assert client.zscore("z", "m") == 1.5
    assert client.lindex("l", 5) is None
    assert client.exists("h", "s", "ghost", "phantom") == 2
    samples = metrics.scrape()
    expected = {
        "GET": (1, 0),
        "GETEX": (1, 0),
        "GETDEL": (0, 1),
        "HGET": (1, 1),
        "HMGET": (2, 2),
        "HGETALL": (1, 1),
        "HEXISTS": (1, 0),
        "SMEMBERS": (1, 1),
        "ZSCORE": (1, 0),
        "LINDEX": (0, 1),
        "EXISTS": (2, 2),
    }
    assert {command: (hits(samples, command), misses(samples, command)) for command in expected} == expected
    assert set(nonzero(samples, "covet_cache_hits_total")) | set(
        nonzero(samples, "covet_cache_misses_total")
    ) == set(expected)


def test_command_label_is_bounded(client, metrics) -> None:
    client.execute_command("set", "secret-key-123", "v")  # lower case, as some callers send
    client.execute_command(b"GET", "secret-key-123")  # bytes name
    client.config_get("maxmemory")  # "CONFIG GET": two words, labelled by the first
    with pytest.raises(redis.exceptions.ResponseError):
        client.execute_command("NOSUCHCOMMAND", "secret-key-123")
    samples = metrics.scrape()
    assert calls(samples, "SET") == 1
    assert calls(samples, "GET") == 1
    assert hits(samples, "GET") == 1
    assert calls(samples, "CONFIG") == 1
    assert calls(samples, "other", "error") == 1
    assert samples.value("covet_cache_errors_total", command="other", error_type="response") == 1
    for (name, labels), _ in samples.samples.items():
        if name.startswith("covet_cache"):
            assert not any("secret" in value for _, value in labels), (name, labels)


def test_pipeline_is_one_operation_and_counts_its_commands(client, metrics) -> None:
    client.set("present", "1")
    pipe = client.pipeline(transaction=False)
    pipe.set("k", "v").get("k").get("absent").mget("k", "present", "absent")
    assert pipe.execute() == [True, b"v", None, [b"v", b"1", None]]
    samples = metrics.scrape()
    assert calls(samples, "PIPELINE") == 1
    assert calls(samples, "MULTI") == 0
    assert calls(samples, "GET") == 0  # commands inside are not operations of their own
    assert calls(samples, "SET") == 1  # the one outside
    assert nonzero(samples, "covet_cache_pipeline_commands_total") == {"GET": 2, "SET": 1, "MGET": 1}
    assert (hits(samples, "GET"), misses(samples, "GET")) == (1, 1)
    assert (hits(samples, "MGET"), misses(samples, "MGET")) == (2, 1)


def test_transaction_is_labelled_multi(client, metrics) -> None:
    with client.pipeline() as pipe:  # transaction=True by default
        pipe.incr("n").incr("n").get("n")
        assert pipe.execute() == [1, 2, b"2"]
    empty = client.pipeline()
    assert empty.execute() == []  # nothing queued: no round trip, nothing measured
    samples = metrics.scrape()
    assert calls(samples, "MULTI") == 1
    assert calls(samples, "PIPELINE") == 0
    # incr() sends INCRBY
    assert nonzero(samples, "covet_cache_pipeline_commands_total") == {"INCRBY": 2, "GET": 1}
    assert (hits(samples, "GET"), misses(samples, "GET")) == (1, 0)


def test_watched_transaction(client, metrics) -> None:
    client.set("balance", "10")
    with client.pipeline() as pipe:
        pipe.watch("balance")
        current = int(pipe.get("balance"))  # sent at once while watching
        pipe.multi()
        pipe.set("balance", current - 3)
        assert pipe.execute() == [True]
    samples = metrics.scrape()
    assert calls(samples, "WATCH") == 1
    assert calls(samples, "GET") == 1
    assert hits(samples, "GET") == 1
    assert calls(samples, "MULTI") == 1
    assert nonzero(samples, "covet_cache_pipeline_commands_total") == {"SET": 1}


def test_watch_conflict_is_an_error_of_type_other(client, metrics, redis_server) -> None:
    other = redis_server.client()
    client.set("seat", "free")
    with client.pipeline() as pipe:
        pipe.watch("seat")
        other.set("seat", "taken")  # another client changes it: EXEC aborts
        pipe.multi()
        pipe.set("seat", "mine")
        with pytest.raises(redis.exceptions.WatchError):
            pipe.execute()
    other.close()
    samples = metrics.scrape()
    assert calls(samples, "MULTI", "error") == 1
    assert samples.value("covet_cache_errors_total", command="MULTI", error_type="other") == 1


def test_response_errors(client, metrics) -> None:
    client.set("text", "abc")
    with pytest.raises(redis.exceptions.ResponseError):
        client.incr("text")
    pipe = client.pipeline(transaction=False)
    pipe.incr("text").get("text")
    with pytest.raises(redis.exceptions.ResponseError):
        pipe.execute()
    pipe = client.pipeline(transaction=False)
    pipe.incr("text").get("text")
    replies = pipe.execute(raise_on_error=False)
    assert isinstance(replies[0], redis.exceptions.ResponseError) and replies[1] == b"abc"
    samples = metrics.scrape()
    assert calls(samples, "INCRBY", "error") == 1  # redis-py's incr() sends INCRBY
    assert samples.value("covet_cache_errors_total", command="INCRBY", error_type="response") == 1
    assert calls(samples, "PIPELINE", "error") == 1
    assert calls(samples, "PIPELINE", "success") == 1
    assert samples.value("covet_cache_errors_total", command="PIPELINE", error_type="response") == 1
    assert samples.value("covet_cache_pipeline_commands_total", command="INCRBY") == 2
    # hits count only from a pipeline that returned its replies
    assert (hits(samples, "GET"), misses(samples, "GET")) == (1, 0)


class _Boom(redis.Connection):
    error = ValueError("raised inside redis-py")

    def send_command(self, *args, **kwargs):
        raise self.error


def test_app_gets_redis_py_exception_object_unchanged(redis_server, instrumented, metrics) -> None:
    pool = redis.ConnectionPool(host=redis_server.host, port=redis_server.port, connection_class=_Boom)
    r = redis.Redis(connection_pool=pool)
    with pytest.raises(ValueError) as raised:
        r.get("k")
    assert raised.value is _Boom.error
    samples = metrics.scrape()
    assert samples.value("covet_cache_errors_total", command="GET", error_type="other") == 1
    assert calls(samples, "GET", "error") == 1
    pool.disconnect()


def test_our_failures_never_reach_the_app(client, metrics, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("instrumentation bug")

    client.set("k", "v")
    assert client.get("k") == b"v"
    monkeypatch.setattr(covet_redis._by_name["GET"], "rule", broken)
    assert client.get("k") == b"v"
    monkeypatch.setattr(covet_redis, "error_type", broken)
    with pytest.raises(redis.exceptions.ResponseError):
        client.incr("k")
    monkeypatch.setattr(covet_redis, "_by_label", None)  # every label lookup now fails
    assert client.pipeline().set("a", 1).get("a").execute() == [True, b"1"]
    monkeypatch.setattr(covet_redis, "command_label", broken)
    monkeypatch.setattr(covet_redis, "_by_name", {})
    assert client.execute_command("ECHO", "still works") == b"still works"


def test_redis_stopped_then_restarted(fresh_redis, instrumented, metrics) -> None:
    r = redis.Redis(host=fresh_redis.host, port=fresh_redis.port)
    r.set("k", "v")
    assert r.get("k") == b"v"
    fresh_redis.stop()
    with pytest.raises(redis.exceptions.ConnectionError) as raised:
        r.get("k")
    assert type(raised.value) is redis.exceptions.ConnectionError  # redis-py's own, not wrapped
    with pytest.raises(redis.exceptions.ConnectionError):
        r.pipeline().get("k").execute()
    samples = metrics.scrape()
    assert samples.value("covet_cache_errors_total", command="GET", error_type="connection") == 1
    assert samples.value("covet_cache_errors_total", command="MULTI", error_type="connection") == 1
    assert calls(samples, "GET", "error") == 1
    assert hits(samples, "GET") == 1

    fresh_redis.start()  # empty again: no persistence
    assert r.get("k") is None
    r.set("k", "back")
    assert r.get("k") == b"back"
    samples = metrics.scrape()
    assert (hits(samples, "GET"), misses(samples, "GET")) == (2, 1)
    assert calls(samples, "GET", "success") == 3
    assert samples.value("covet_cache_errors_total", command="GET", error_type="connection") == 1
    r.close()


def test_timeout_is_told_apart(fresh_redis, instrumented, metrics) -> None:
    r = redis.Redis(
        host=fresh_redis.host,
        port=fresh_redis.port,
        socket_timeout=0.2,
        retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
    )
    r.ping()
    fresh_redis.pause()  # accepts nothing, answers nothing: the read times out
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            r.get("k")
    finally:
        fresh_redis.resume()
    samples = metrics.scrape()
    assert samples.value("covet_cache_errors_total", command="GET", error_type="timeout") == 1
    assert samples.get("covet_cache_errors_total", command="GET", error_type="connection") == 0
    r.close()


def test_hit_rule_on_resp3_replies(redis_server, instrumented, metrics) -> None:
    r = redis.Redis(host=redis_server.host, port=redis_server.port, protocol=3, decode_responses=True)
    r.flushdb()
    r.hset("h", mapping={"f": "v"})
    r.sadd("s", "m")
    from covet_otel import instruments

    instruments.reset_all()
    assert r.get("absent") is None
    assert r.hgetall("h") == {"f": "v"}
    assert r.hgetall("absent") == {}
    assert r.hexists("h", "f")
    assert r.smembers("s") == {"m"}
    assert r.hmget("h", ["f", "g"]) == ["v", None]
    samples = metrics.scrape()
    got = {
        c: (hits(samples, c), misses(samples, c)) for c in ("GET", "HGETALL", "HEXISTS", "SMEMBERS", "HMGET")
    }
    assert got == {"GET": (0, 1), "HGETALL": (1, 1), "HEXISTS": (1, 0), "SMEMBERS": (1, 0), "HMGET": (1, 1)}
    r.close()


def test_connection_lost_while_watching_counts_as_connection(fresh_redis, instrumented, metrics) -> None:
    r = redis.Redis(host=fresh_redis.host, port=fresh_redis.port)
    with r.pipeline() as pipe:
        pipe.watch("k")
        fresh_redis.stop()
        # redis-py turns the lost connection into a WatchError: the watch can no longer hold
        with pytest.raises(redis.exceptions.WatchError):
            pipe.get("k")
    samples = metrics.scrape()
    assert samples.value("covet_cache_errors_total", command="GET", error_type="connection") == 1
    assert samples.get("covet_cache_errors_total", command="GET", error_type="other") == 0
    r.close()
