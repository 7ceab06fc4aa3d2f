"""URLconf of the Django test app (settings are configured by tests/http/test_django.py)."""

from __future__ import annotations

import time

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import include, path

from covet_otel.instrumentation.http import record_auth_failure


def item(request, item_id: int) -> JsonResponse:
    return JsonResponse({"item_id": item_id})


def boom(request) -> HttpResponse:
    raise RuntimeError("kaboom")


def private(request) -> HttpResponse:
    return HttpResponse("no", status=401)


def login(request) -> HttpResponse:
    record_auth_failure("bad_password")
    return HttpResponse("no", status=401)


def stream(request) -> StreamingHttpResponse:
    def chunks():
        for _ in range(3):
            time.sleep(0.2)
            yield b"x" * 100

    return StreamingHttpResponse(chunks())


api = [path("users/<slug:name>", lambda request, name: HttpResponse(name))]

urlpatterns = [
    path("items/<int:item_id>", item),
    path("boom", boom),
    path("private", private),
    path("login", login),
    path("stream", stream),
    path("api/", include(api)),
]
