"""Pytest plugin (loaded with -p, see pyproject.toml): how the suite splits over pytest-xdist
workers (`-n N --dist loadgroup`, as scripts/test.sh runs it).

Most of the suite's time is spent waiting on real servers (an alert's `for`, a scrape, a
notification), not computing, so several workers share the two cores well. Each test module runs
whole on one worker, in file order: its module fixtures start once, and the signal-integrity
proof's steps depend on their order. The modules that read the session's shared `stack` fixture all
run on one worker, so that stack is started once. Without `-n` this plugin only adds marks.
"""

from __future__ import annotations

from typing import Any

import pytest

SHARED_STACK_GROUP = "stack"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    modules_with_stack = {module(item) for item in items if "stack" in getattr(item, "fixturenames", ())}
    group = {
        item: SHARED_STACK_GROUP if module(item) in modules_with_stack else module(item) for item in items
    }
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group[item]))
    if getattr(config.option, "loadgroup", False):  # set in xdist workers of a loadgroup run
        # groups are handed out in collection order: the long ones (holding a test marked slow)
        # first, so that none of them starts last and runs on alone while the other workers idle
        slow = {group[item] for item in items if item.get_closest_marker("slow")}
        items.sort(key=lambda item: group[item] not in slow)


def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """On the controller: every test id a worker collected carries its group (xdist appends
    "@group" in loadgroup runs); one without it would be scheduled apart from its module."""
    if node.config.getvalue("dist") != "loadgroup":
        return
    split = [nodeid for nodeid in ids if "@" not in nodeid.rsplit("]", 1)[-1]]
    if split:
        pytest.exit(
            f"pytest-xdist did not group {split[0]} (and {len(split) - 1} more) by module: --dist "
            "loadgroup does not work with this pytest (pytest-dev/pytest-xdist#1386); install the "
            "pytest of tools/python-constraints.txt, or run with -n 0",
            returncode=4,
        )
