"""The ASGI middleware with a real Starlette app and Starlette's test client."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from splitlab.core.headers import parse_enrollments_header
from splitlab.sdk import Client, MemoryEventSender
from splitlab.sdk.asgi import SplitlabASGIMiddleware

from .sdk_helpers import make, oracle, row
from .web_helpers import read_page

starlette = pytest.importorskip("starlette")
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

GROUPS = ["control", "treatment"]
ROWS = [row("anon-banner-test", "edge-unique"), row("signup-flow-test", "mw-user")]
PAGE = ("<!doctype html><html><head><title>t</title></head>"
        "<body class='page'><p>hi</p></body></html>")


def build(client: Client) -> TestClient:
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def api(request: Request) -> JSONResponse:
        handle = request.state.splitlab.get_experiment("anon-banner-test")
        return JSONResponse({"group": handle.get_assigned_group()})

    async def signup(request: Request) -> JSONResponse:
        manager = request.state.splitlab
        manager.update_user(int(request.query_params["uid"]))
        manager.log_enrollment("signup-flow-test", "account_creation")
        return JSONResponse({"ok": True})

    async def stream(request: Request) -> StreamingResponse:
        async def parts():  # type: ignore[no-untyped-def]
            for part in ("<html><head></head><bo", "dy><p>streamed</p>", "</body></html>"):
                yield part.encode()
        return StreamingResponse(parts(), media_type="text/html")

    app = Starlette(routes=[Route("/", page), Route("/api", api),
                            Route("/signup", signup, methods=["POST"]), Route("/stream", stream)])
    return TestClient(SplitlabASGIMiddleware(app, client))


def cookie_of(response: object) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])  # type: ignore[attr-defined]
    return jar


def test_html_page_gets_cookie_config_block_and_classes() -> None:
    client, _, _ = make(ROWS)
    response = build(client).get("/")
    morsel = cookie_of(response)["splitlab_anon"]
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and not morsel["secure"]
    assert morsel["path"] == "/"
    group = oracle(morsel.value, "anon-banner-test", GROUPS, 1.0)
    page = read_page(response.text)
    assert page.blocks == 1
    assert page.config is not None and page.config["assigned"] == {"anon-banner-test": group}
    assert page.body_classes == ["page", "xlab-experiment-anon-banner-test",
                                 f"xlab-experiment-anon-banner-test-{group}"]
    assert morsel.value not in response.text  # the raw anonymous id is not in the page
    assert int(response.headers["content-length"]) == len(response.content)
    assert "x-experiment-enrollments" not in response.headers
    assert response.text.index("splitlab-config") < response.text.index("<body")


def test_known_cookie_is_reused_and_api_gets_the_header() -> None:
    client, _, _ = make(ROWS)
    test_client = build(client)
    anonymous = "A" * 20
    test_client.cookies.set("splitlab_anon", anonymous)
    response = test_client.get("/api")
    group = oracle(anonymous, "anon-banner-test", GROUPS, 1.0)
    assert response.json() == {"group": group}
    assert "set-cookie" not in response.headers
    assert parse_enrollments_header(response.headers["x-experiment-enrollments"]) == \
        {"anon-banner-test": group}


def test_malformed_cookie_is_replaced_and_https_sets_secure() -> None:
    client, _, _ = make(ROWS)
    test_client = TestClient(build(client).app, base_url="https://testserver")
    test_client.cookies.set("splitlab_anon", "short")
    morsel = cookie_of(test_client.get("/api"))["splitlab_anon"]
    assert morsel["secure"] and len(morsel.value) >= 16


def test_signup_enrolls_mid_request_and_sends_the_enrollment_event() -> None:
    client, _, sender = make(ROWS)
    response = build(client).post("/signup?uid=4321")
    assert response.status_code == 200
    (event,) = sender.events
    assert event["action_source"] == "account_creation"
    assert event["experiment"]["assigned"] == oracle(4321, "signup-flow-test", GROUPS, 1.0)
    assert event["performer"]["id"] == 4321
    assert parse_enrollments_header(response.headers["x-experiment-enrollments"])[
        "signup-flow-test"] == event["experiment"]["assigned"]


def test_override_shows_in_the_page_and_streamed_html_is_decorated() -> None:
    client, _, sender = make(ROWS)
    response = build(client).get("/stream?mpo=anon-banner-test:treatment")
    page = read_page(response.text)
    assert page.config is not None
    assert page.config["overrides"] == {"anon-banner-test": "treatment"}
    assert "xlab-experiment-anon-banner-test-treatment" in page.body_classes
    assert "<p>streamed</p>" in response.text
    assert sender.events == []


def test_misuse_is_refused() -> None:
    with pytest.raises(TypeError):
        SplitlabASGIMiddleware(Starlette(), MemoryEventSender())  # type: ignore[arg-type]


def test_raw_asgi_pathsend_and_other_scopes_pass_through() -> None:
    import asyncio

    client, _, _ = make(ROWS)
    seen_scopes: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen_scopes.append(scope["type"])
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/html")]})
            await send({"type": "http.response.pathsend", "path": "/srv/page.html"})

    sent: list[dict[str, object]] = []

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b""}

    middleware = SplitlabASGIMiddleware(app, client)
    http_scope = {"type": "http", "method": "GET", "path": "/", "headers": [],
                  "query_string": b"", "scheme": "http"}
    asyncio.run(middleware(http_scope, receive, send))
    asyncio.run(middleware({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert seen_scopes == ["http", "lifespan"]
    assert "splitlab" in http_scope["state"]  # type: ignore[operator]
