"""Django with ``splitlab.sdk.django.SplitlabMiddleware``, under ``django.test.Client`` and
``AsyncClient``: GZipMiddleware before and after it, streamed pages, HEAD, a failing stream, the
TLS proxy header. Compressed pages are read back with the standard library's gzip."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from splitlab.core.headers import parse_enrollments_header

from .compress_helpers import PAGE, check_page
from .sdk_helpers import make, oracle, row

django = pytest.importorskip("django")
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        DEBUG=False, SECRET_KEY="test-only", ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__,
        MIDDLEWARE=[], INSTALLED_APPS=[], USE_TZ=True,
    )
    django.setup()

from django.core.signals import request_finished  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

ROWS = [row("anon-banner-test", "edge-unique")]
TARGETED = "registered-mobile-readers"
JOINED = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
ANON = "D" * 22
SPLITLAB = "splitlab.sdk.django.SplitlabMiddleware"
GZIP = "django.middleware.gzip.GZipMiddleware"


def page(request: HttpRequest) -> HttpResponse:
    request.splitlab.get_experiment("anon-banner-test").send_exposure()  # type: ignore[attr-defined]
    return HttpResponse(PAGE)


def stream(request: HttpRequest) -> StreamingHttpResponse:
    request.splitlab.get_experiment("anon-banner-test").send_exposure()  # type: ignore[attr-defined]
    return StreamingHttpResponse(PAGE[i:i + 101] for i in range(0, len(PAGE), 101))


def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    async def parts() -> AsyncIterator[str]:
        for i in range(0, len(PAGE), 101):
            yield PAGE[i:i + 101]
    return StreamingHttpResponse(parts())


def broken(request: HttpRequest) -> StreamingHttpResponse:
    request.splitlab.get_experiment("anon-banner-test").send_exposure()  # type: ignore[attr-defined]

    def parts() -> Iterator[str]:
        yield "<html><head>"
        raise OSError("the template backend failed")
    return StreamingHttpResponse(parts())


def api(request: HttpRequest) -> JsonResponse:
    manager = request.splitlab  # type: ignore[attr-defined]
    return JsonResponse({"group": manager.get_experiment("anon-banner-test").get_assigned_group()})


def attributes(request: HttpRequest) -> JsonResponse:
    manager = request.splitlab  # type: ignore[attr-defined]
    return JsonResponse({"attributes": dict(manager.attributes),
                         "group": manager.get_experiment(TARGETED).get_assigned_group()})


def stub_authentication(get_response: Any) -> Any:
    """What ``AuthenticationMiddleware`` gives views: ``request.user`` (from a test header)."""
    def middleware(request: HttpRequest) -> Any:
        name = request.headers.get("X-Test-User")
        request.user = SimpleNamespace(  # type: ignore[assignment]
            is_authenticated=bool(name), date_joined=JOINED if name else None)
        return get_response(request)
    return middleware


urlpatterns = [path("", page), path("stream", stream), path("async-stream", async_stream),
               path("broken", broken), path("api", api), path("attributes", attributes)]


def settings_for(order: str, client: Any) -> override_settings:
    middleware = {"splitlab-only": [SPLITLAB], "gzip-before": [GZIP, SPLITLAB],
                  "gzip-after": [SPLITLAB, GZIP]}[order]
    return override_settings(MIDDLEWARE=middleware, SPLITLAB_CLIENT=client)


def text_of(response: Any) -> str:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    if response.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return body.decode()


@pytest.mark.parametrize("order", ["splitlab-only", "gzip-before", "gzip-after"])
@pytest.mark.parametrize("url", ["/", "/stream"])
def test_pages_are_decorated_whatever_the_order(order: str, url: str) -> None:
    client, _, sender = make(ROWS)
    with settings_for(order, client):
        tester = Client(HTTP_ACCEPT_ENCODING="gzip")
        tester.cookies["splitlab_anon"] = ANON
        response = tester.get(url)
        assert response.status_code == 200
        if order != "splitlab-only":
            assert response["Content-Encoding"] == "gzip"
        check_page(text_of(response), ANON)
        if response.has_header("Content-Length"):
            assert int(response["Content-Length"]) == len(response.content)
    assert [e["action"] for e in sender.events] == ["experiment_exposure"]


@pytest.mark.parametrize("order", ["gzip-before", "gzip-after"])
def test_async_stack_and_async_stream(order: str) -> None:
    import asyncio

    client, _, _ = make(ROWS)
    with settings_for(order, client):
        async def run() -> str:
            tester = AsyncClient(headers={"accept-encoding": "gzip"})
            tester.cookies["splitlab_anon"] = ANON
            response = await tester.get("/async-stream")
            parts = [part async for part in response.streaming_content]
            body = b"".join(parts)
            return (gzip.decompress(body) if response.get("Content-Encoding") == "gzip"
                    else body).decode()
        check_page(asyncio.run(run()), ANON)


def test_cookie_api_header_and_the_tls_proxy_header() -> None:
    client, _, _ = make(ROWS)
    with settings_for("splitlab-only", client):
        plain = Client().get("/api", HTTP_X_FORWARDED_PROTO="https")
        morsel = plain.cookies["splitlab_anon"]
        assert morsel["httponly"] and morsel["samesite"] == "Lax" and not morsel["secure"]
        with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
            proxied = Client().get("/api", HTTP_X_FORWARDED_PROTO="https")
        secure = proxied.cookies["splitlab_anon"]
        assert secure["secure"]
        group = oracle(secure.value, "anon-banner-test", ["control", "treatment"], 1.0)
        assert proxied.json() == {"group": group}
        assert parse_enrollments_header(proxied["X-Experiment-Enrollments"]) == {
            "anon-banner-test": group}


def test_head_sends_no_exposure_and_a_failing_stream_finishes_the_request_once() -> None:
    client, _, sender = make(ROWS)
    finished: list[object] = []

    def on_finished(**kwargs: object) -> None:
        finished.append(kwargs)

    request_finished.connect(on_finished)
    try:
        with settings_for("gzip-after", client):
            head = Client(HTTP_ACCEPT_ENCODING="gzip").head("/")
            assert head.status_code == 200 and head.content == b""
            response = Client(HTTP_ACCEPT_ENCODING="gzip").get("/broken")
            finished.clear()
            with pytest.raises(OSError):  # the test client closes the response, as a server would
                b"".join(response.streaming_content)
            assert len(finished) == 1
    finally:
        request_finished.disconnect(on_finished)
    assert sender.events == []
    dropped = {reason: client.metrics.value("splitlab_sdk_events_dropped_total",
                                            {"reason": reason})
               for reason in ("head_request", "request_failed")}
    assert dropped == {"head_request": 1, "request_failed": 1}


def test_a_missing_client_setting_is_a_clear_error() -> None:
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(MIDDLEWARE=[SPLITLAB]), pytest.raises(ImproperlyConfigured,
                                                                 match="SPLITLAB_CLIENT"):
        Client().get("/")


def test_a_dotted_path_names_the_client() -> None:
    client, _, _ = make(ROWS)
    globals()["CONFIGURED_CLIENT"] = client
    with override_settings(MIDDLEWARE=[SPLITLAB],
                           SPLITLAB_CLIENT=f"{__name__}.CONFIGURED_CLIENT"):
        response = Client().get("/")
    assert "splitlab-config" in response.content.decode()


def test_the_user_and_the_user_agent_reach_targeting() -> None:
    rows = [*ROWS, row(TARGETED, "edge-unique", algorithm="sl-v2",
                       traffic_split={"default": {"control": 50, "treatment": 50}},
                       targeting={"platform": "mobile", "is_logged_in": True,
                                  "registration_date": {"$lt": "2022-01-01"}})]
    client, _, _ = make(rows, site="enwiki")
    phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148 Safari/604.1"
    with override_settings(MIDDLEWARE=[f"{__name__}.stub_authentication", SPLITLAB],
                           SPLITLAB_CLIENT=client):
        known = Client().get("/attributes?useskin=minerva", HTTP_USER_AGENT=phone,
                             HTTP_X_TEST_USER="ada").json()
        anonymous = Client().get("/attributes", HTTP_USER_AGENT=phone).json()
    assert known["attributes"] == {"site": "enwiki", "platform": "mobile", "skin": "minerva",
                                   "is_logged_in": True,
                                   "registration_date": "2021-03-04T05:06:07Z"}
    assert known["group"] in ("control", "treatment")
    assert anonymous["attributes"] == {"site": "enwiki", "platform": "mobile",
                                       "is_logged_in": False}
    assert anonymous["group"] is None
