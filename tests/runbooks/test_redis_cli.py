"""Every `redis-cli` command in the runbooks is a command the real Redis knows, with a valid number
of arguments (``COMMAND INFO`` name, subcommand and arity); read-only ones are run with redis-cli
on the harness Redis, those in a block marked ``# Changes state:`` on a throwaway Redis."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from harness import Redis, tools

from .markdown import Block, blocks, commands, runbook_files

# redis-cli options the runbooks may use: connection options are replaced by the test server's,
# the others are kept. An option not listed here fails the test, so a typo cannot slip through.
CONNECTION_OPTIONS = {"-u", "-h", "-p", "-a", "--user", "--pass", "-n"}
VALUE_OPTIONS = {"--pattern", "-i"}
FLAG_OPTIONS = {"--no-auth-warning", "--raw", "--csv", "--json", "--tls"}
# finite modes (they end by themselves); --stat and --latency run until interrupted
MODES = {"--bigkeys", "--memkeys", "--scan"}

# Commands that change the server although COMMAND INFO does not flag them "write" (admin
# commands): a runbook must run them only in a block that says so.
STATE_CHANGING = {
    "config|set", "config|rewrite", "config|resetstat", "client|kill", "client|pause", "client|no-evict",
    "slowlog|reset", "latency|reset", "memory|purge", "script|kill", "script|flush", "function|kill",
    "acl|setuser", "acl|deluser", "flushall", "flushdb", "shutdown", "debug", "failover", "replicaof",
    "slaveof", "save", "bgsave", "bgrewriteaof", "swapdb", "cluster|failover",
}  # fmt: skip


@dataclass(frozen=True)
class Invocation:
    block: Block
    options: tuple[str, ...]  # kept options and modes
    words: tuple[str, ...]  # the Redis command and its arguments

    @property
    def where(self) -> str:
        return f"{self.block.where} {' '.join(self.words) or ' '.join(self.options)}"


def parse(block: Block, argv: list[str]) -> Invocation:
    options: list[str] = []
    rest = argv[1:]
    while rest and rest[0].startswith("-"):
        opt = rest.pop(0)
        if opt in CONNECTION_OPTIONS:
            rest.pop(0)
        elif opt in VALUE_OPTIONS:
            options += [opt, rest.pop(0)]
        elif opt in FLAG_OPTIONS or opt in MODES:
            options.append(opt)
        else:
            raise AssertionError(f"{block.where}: redis-cli option {opt} is not known to this test")
    return Invocation(block, tuple(options), tuple(rest))


INVOCATIONS: list[Invocation] = [
    parse(b, argv)
    for path in runbook_files()
    for b in blocks(path)
    if b.lang in ("console", "sh")
    for argv in commands(b, "redis-cli")
]
IDS = [i.where for i in INVOCATIONS]


@pytest.fixture(scope="module")
def client(redis_server: Redis) -> Iterator[Any]:
    c = redis_server.client(decode_responses=True)
    c.set("runbook:key", "value")
    c.hset("runbook:hash", mapping={"a": "1", "b": "2"})
    yield c
    c.close()


def _info(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return client.execute_command("COMMAND", "INFO", name).get(name)
    except TypeError:  # redis-py cannot parse the nil reply Redis gives for an unknown name
        return None


def command_info(client: Any, words: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """(full name, COMMAND INFO) of a command, the subcommand's for container commands."""
    name = words[0].lower()
    info = _info(client, name)
    assert info, f"unknown Redis command {words[0]}"
    if info["subcommands"]:
        assert len(words) >= 2, f"{words[0]} needs a subcommand"
        name = f"{name}|{words[1].lower()}"
        info = _info(client, name)
        assert info, f"unknown subcommand {words[0]} {words[1]}"
    return name, info


def test_there_are_redis_cli_commands() -> None:
    assert len(INVOCATIONS) >= 25


@pytest.mark.parametrize("inv", INVOCATIONS, ids=IDS)
def test_command_exists_with_valid_arity(client: Any, inv: Invocation) -> None:
    if not inv.words:
        assert set(inv.options) & MODES, f"{inv.where}: neither a command nor a mode"
        return
    name, info = command_info(client, inv.words)
    arity = info["arity"]
    if arity >= 0:
        assert len(inv.words) == arity, f"{inv.where}: {name} takes exactly {arity - 1} arguments"
    else:
        assert len(inv.words) >= -arity, f"{inv.where}: {name} takes at least {-arity - 1} arguments"
    changing = name in STATE_CHANGING or "write" in info["flags"]
    if changing:
        assert inv.block.changes_state, f"{inv.where}: changes the server; mark its block '# Changes state:'"


def redis_cli() -> str:
    binary = shutil.which("redis-cli")
    if binary is None:
        tools.missing("redis-cli", "it comes with the redis-tools package")
    return str(binary)


def run(server: Redis, inv: Invocation) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [redis_cli(), "-u", server.url, *inv.options, *inv.words],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_ok(inv: Invocation, result: subprocess.CompletedProcess[str]) -> None:
    # redis-cli 7 exits 0 on an error reply: look at what it printed
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{inv.where}: exit {result.returncode}: {output}"
    for marker in ("ERR ", "(error)", "WRONGTYPE", "NOPERM", "Unrecognized option"):
        assert marker not in output, f"{inv.where}: {output}"


READ_ONLY = [i for i in INVOCATIONS if not i.block.changes_state]
CHANGING = [i for i in INVOCATIONS if i.block.changes_state]


@pytest.mark.parametrize("inv", READ_ONLY, ids=[i.where for i in READ_ONLY])
def test_read_only_command_runs(redis_server: Redis, client: Any, inv: Invocation) -> None:
    result = run(redis_server, inv)
    assert_ok(inv, result)
    assert result.stdout.strip() or inv.words[:2] in (("SLOWLOG", "GET"), ("LATENCY", "LATEST")), inv.where


@pytest.fixture(scope="module")
def throwaway() -> Iterator[Redis]:
    server = Redis()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.mark.parametrize("inv", CHANGING, ids=[i.where for i in CHANGING])
def test_changing_command_runs_on_a_throwaway_redis(throwaway: Redis, inv: Invocation) -> None:
    assert_ok(inv, run(throwaway, inv))


def test_a_wrong_command_is_caught(client: Any) -> None:
    """The checks above can fail: an unknown subcommand and an error reply are reported."""
    with pytest.raises(AssertionError, match="unknown subcommand"):
        command_info(client, ("CONFIG", "GETX", "maxmemory"))
    block = Block(runbook_files()[0], "console", "", 1)
    with pytest.raises(AssertionError, match="ERR"):
        replied = subprocess.CompletedProcess([], 0, "ERR unknown subcommand", "")
        assert_ok(Invocation(block, (), ("CONFIG", "GETX")), replied)
