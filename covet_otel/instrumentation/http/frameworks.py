"""Instrumentors that put the HTTP middleware into Starlette/FastAPI, Flask and Django apps.

Like the upstream framework instrumentors they act on app construction: the methods that build
an app's request pipeline are wrapped at class level with wrapt, so every app gets the middleware,
including apps created before instrument() ran, and unwrapping restores the original methods.

- Starlette/FastAPI: `build_middleware_stack` (called lazily on the first request). The
  middleware goes just inside the outermost ServerErrorMiddleware: it sees user middleware
  responses (an auth middleware's 401) and unhandled exceptions, and the stack keeps the shape
  that the upstream FastAPI instrumentor checks for, so both coexist.
- Flask: `Flask.wsgi_app`, plus hooks for the matched rule and for unhandled exceptions (Flask
  turns those into its own 500 response before the WSGI layer sees them).
- Django: the WSGI and ASGI handlers, plus hooks for the resolver match and uncaught exceptions.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Collection
from typing import Any, ClassVar

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap

from ._core import CURRENT, resolve_excluded
from .asgi import CovetASGIMiddleware
from .routes import set_route_from_django, set_route_from_flask
from .wsgi import measure_wsgi

_logger = logging.getLogger("covet_otel")


def _disabled() -> bool:
    from ...settings import current

    return not current().enabled  # COVET_ENABLED=false leaves the frameworks untouched


def _mark_exception() -> None:
    request = CURRENT.get()
    if request is not None:
        request.exception = True


def _guarded(hook: Any, *args: Any) -> None:
    try:
        hook(*args)
    except Exception:
        _logger.debug("covet-otel: HTTP hook %s failed", getattr(hook, "__name__", hook), exc_info=True)


# wrapt 2 derives its function wrappers from BaseObjectProxy, wrapt 1 from ObjectProxy
_PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def _is_wrapped(owner: type, attr: str) -> bool:
    return isinstance(owner.__dict__.get(attr), _PROXY)


# --------------------------------------------------------------------------------------- Starlette
class StarletteMetricsInstrumentor(BaseInstrumentor):
    """Adds CovetASGIMiddleware to every Starlette and FastAPI application."""

    _hook_registered = False
    _active = False
    _excluded: tuple[str, ...] = ()
    _apps: ClassVar[weakref.WeakSet[Any]] = weakref.WeakSet()

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("starlette >= 0.37",)

    def _instrument(self, **kwargs: Any) -> None:
        if _disabled():
            return
        cls = StarletteMetricsInstrumentor
        cls._excluded = resolve_excluded(kwargs.get("excluded_paths"))
        cls._active = True
        wrapt.wrap_function_wrapper(
            "starlette.applications", "Starlette.build_middleware_stack", _build_stack
        )
        # FastAPI overrides build_middleware_stack without calling Starlette's; patch it when (and
        # only if) the app imports FastAPI, so a Starlette-only app does not pay its import.
        if not cls._hook_registered:
            cls._hook_registered = True
            wrapt.register_post_import_hook(_patch_fastapi, "fastapi.applications")
        else:
            import sys

            module = sys.modules.get("fastapi.applications")
            if module is not None:
                _patch_fastapi(module)

    def _uninstrument(self, **kwargs: Any) -> None:
        import sys

        from starlette.applications import Starlette

        cls = StarletteMetricsInstrumentor
        cls._active = False
        unwrap(Starlette, "build_middleware_stack")
        module = sys.modules.get("fastapi.applications")
        if module is not None and _is_wrapped(module.FastAPI, "build_middleware_stack"):
            unwrap(module.FastAPI, "build_middleware_stack")
        for app in list(cls._apps):
            app.middleware_stack = None  # rebuilt without the middleware on the next request
        cls._apps.clear()


def _patch_fastapi(module: Any) -> None:
    if StarletteMetricsInstrumentor._active and not _is_wrapped(module.FastAPI, "build_middleware_stack"):
        wrapt.wrap_function_wrapper(module, "FastAPI.build_middleware_stack", _build_stack)


def _build_stack(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    stack = wrapped(*args, **kwargs)
    try:
        from starlette.middleware.errors import ServerErrorMiddleware

        excluded = StarletteMetricsInstrumentor._excluded
        StarletteMetricsInstrumentor._apps.add(instance)
        if isinstance(stack, ServerErrorMiddleware):
            if not isinstance(stack.app, CovetASGIMiddleware):
                stack.app = CovetASGIMiddleware(stack.app, excluded_paths=excluded)
            return stack
        if isinstance(stack, CovetASGIMiddleware):
            return stack
        return CovetASGIMiddleware(stack, excluded_paths=excluded)
    except Exception:
        _logger.debug("covet-otel: could not add the HTTP middleware", exc_info=True)
        return stack


# ------------------------------------------------------------------------------ Flask and Django
class _PatchingInstrumentor(BaseInstrumentor):
    """Wraps a fixed list of (module, "Class.method" or "function", wrapper) targets."""

    _excluded: tuple[str, ...] = ()

    def _targets(self) -> list[tuple[str, str, Callable[..., Any]]]:
        raise NotImplementedError

    def _instrument(self, **kwargs: Any) -> None:
        if _disabled():
            return
        type(self)._excluded = resolve_excluded(kwargs.get("excluded_paths"))
        for module, name, wrapper in self._targets():
            wrapt.wrap_function_wrapper(module, name, wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        for module, name, _wrapper in self._targets():
            owner, _, attr = name.rpartition(".")
            unwrap(f"{module}.{owner}" if owner else module, attr)


def _wsgi_entry(owner: type[_PatchingInstrumentor]) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if kwargs or len(args) != 2:
            return wrapped(*args, **kwargs)
        return measure_wsgi(wrapped, args[0], args[1], owner._excluded)

    return wrapper


def _exception_hook(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    # the framework's last resort for an unhandled exception: it answers 500 itself, so the
    # middleware would see a plain 500 response and no exception
    _guarded(_mark_exception)
    return wrapped(*args, **kwargs)


class FlaskMetricsInstrumentor(_PatchingInstrumentor):
    """Measures every Flask application's requests (route: `request.url_rule.rule`)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("flask >= 2.0",)

    def _targets(self) -> list[tuple[str, str, Callable[..., Any]]]:
        return [
            ("flask.app", "Flask.wsgi_app", _wsgi_entry(FlaskMetricsInstrumentor)),
            ("flask.app", "Flask.full_dispatch_request", _flask_dispatch),
            ("flask.app", "Flask.handle_exception", _exception_hook),
        ]


def _flask_dispatch(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    # inside the request context: routing already ran, the rule is known
    _guarded(set_route_from_flask)
    return wrapped(*args, **kwargs)


class DjangoMetricsInstrumentor(_PatchingInstrumentor):
    """Measures Django's WSGI and ASGI handlers (route: `resolver_match.route`)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("django >= 3.2",)

    def _targets(self) -> list[tuple[str, str, Callable[..., Any]]]:
        return [
            ("django.core.handlers.wsgi", "WSGIHandler.__call__", _wsgi_entry(DjangoMetricsInstrumentor)),
            ("django.core.handlers.asgi", "ASGIHandler.__call__", _django_asgi),
            ("django.core.handlers.base", "BaseHandler.resolve_request", _django_resolve),
            ("django.core.handlers.exception", "handle_uncaught_exception", _exception_hook),
        ]


def _no_route(scope: Any) -> None:
    return None  # Django's route comes from the resolver hook, never from the scope


def _django_asgi(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if kwargs or len(args) != 3:
        return wrapped(*args, **kwargs)
    middleware = CovetASGIMiddleware(
        wrapped, route_for=_no_route, excluded_paths=DjangoMetricsInstrumentor._excluded
    )
    return middleware(*args)


def _django_resolve(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    match = wrapped(*args, **kwargs)
    _guarded(set_route_from_django, match)
    return match
