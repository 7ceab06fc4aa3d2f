"""Route templates per framework: the bounded `route` label, never the raw path."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from ._core import CURRENT

_logger = logging.getLogger("covet_otel")

_MAX_MOUNT_DEPTH = 8


def starlette_route(scope: MutableMapping[str, Any], root_path: str) -> str | None:
    """The matched route's template, read from the scope after Starlette/FastAPI routed it.

    Starlette's router stores the matched route object in `scope["route"]` (FastAPI's too). A
    route inside a mounted app knows only its own part of the template, so when routing went
    through a Mount (the root path grew) the mount prefixes are rebuilt from the router tree.
    `root_path` is the scope's root path as the middleware first saw it.
    """
    route = scope.get("route")
    if route is None:
        return None
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        return None
    if scope.get("root_path", "") == root_path:
        return template
    return _mounted_template(scope, root_path, route, template)


def _mounted_template(
    scope: MutableMapping[str, Any], root_path: str, target: Any, template: str
) -> str | None:
    from starlette.routing import Match, Mount

    router = scope.get("router") or getattr(scope.get("app"), "router", None)
    routes = getattr(router, "routes", None)
    probe = {
        "type": scope.get("type", "http"),
        "path": scope.get("path", ""),
        "root_path": root_path,
        "method": scope.get("method", "GET"),
        "path_params": {},
    }
    prefix = ""
    for _ in range(_MAX_MOUNT_DEPTH):
        if not routes:
            return None
        for candidate in routes:
            if candidate is target:
                return prefix + template
            if isinstance(candidate, Mount):
                match, child = candidate.matches(probe)
                if match is Match.FULL:
                    prefix += candidate.path
                    probe.update(child)
                    routes = candidate.routes
                    break
        else:
            return None
    return None


def set_route_from_flask() -> None:
    """Called inside Flask's request context: the matched rule (`/items/<int:item_id>`)."""
    request = CURRENT.get()
    if request is None:
        return
    from flask import request as flask_request

    rule = flask_request.url_rule
    if rule is not None:
        request.route = rule.rule


def set_route_from_django(resolver_match: Any) -> None:
    """`resolver_match.route` is the URL pattern as written (`items/<int:item_id>`)."""
    request = CURRENT.get()
    if request is None or resolver_match is None:
        return
    route = getattr(resolver_match, "route", None)
    if isinstance(route, str):
        # path() patterns are written without the leading slash; re_path() patterns start with ^
        request.route = route if route.startswith(("/", "^")) else "/" + route
