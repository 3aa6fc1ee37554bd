"""The demo's views: the page, the same page streamed, and a JSON API."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from ..wiring import BANNER, banner_page, make_client, page_parts

CLIENT = make_client()
"""The process's splitlab client (``SPLITLAB_CLIENT`` in the settings names it)."""


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(banner_page(request.splitlab, "Django"))  # type: ignore[attr-defined]


def stream(request: HttpRequest) -> StreamingHttpResponse:
    page = banner_page(request.splitlab, "Django, streamed")  # type: ignore[attr-defined]
    return StreamingHttpResponse(page_parts(page))


def banner(request: HttpRequest) -> JsonResponse:
    manager = request.splitlab  # type: ignore[attr-defined]
    return JsonResponse({"group": manager.get_experiment(BANNER).get_assigned_group()})
