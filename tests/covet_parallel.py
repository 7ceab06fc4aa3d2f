"""Pytest plugin (loaded with -p, see pyproject.toml): how the suite splits over pytest-xdist
workers (`-n N --dist loadgroup`, as scripts/test.sh runs it).

Most of the suite's time is spent waiting on real servers (an alert's `for`, a scrape, a
notification), not computing, so several workers share the two cores well. Each test module runs
whole on one worker, in file order: its module fixtures start once, and the signal-integrity
proof's steps depend on their order. The modules that read the session's shared `stack` fixture all
run on one worker, so that stack is started once. Without `-n` this plugin only adds marks.
"""

from __future__ import annotations

import pytest

SHARED_STACK_GROUP = "stack"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    modules_with_stack = {
        item.nodeid.split("::")[0] for item in items if "stack" in getattr(item, "fixturenames", ())
    }
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        module = item.nodeid.split("::")[0]
        group = SHARED_STACK_GROUP if module in modules_with_stack else module
        item.add_marker(pytest.mark.xdist_group(group))
