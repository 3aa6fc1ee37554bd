"""The middlewares pass what a request tells about its unit to targeting conditions:
``platform`` (user agent, client hint, mobile domain), ``skin`` (``useskin``), ``is_logged_in``
where the framework knows the user, and the application's own attributes (``WebOptions``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from splitlab.sdk import Client
from splitlab.sdk.asgi import SplitlabASGIMiddleware
from splitlab.sdk.attributes import platform_of, skin_of
from splitlab.sdk.web import ENVIRON_KEY, WebOptions
from splitlab.sdk.wsgi import SplitlabWSGIMiddleware

from .sdk_helpers import make, row

starlette = pytest.importorskip("starlette")
from starlette.applications import Starlette  # noqa: E402
from starlette.authentication import (  # noqa: E402
    AuthCredentials,
    AuthenticationBackend,
    SimpleUser,
)
from starlette.middleware import Middleware  # noqa: E402
from starlette.middleware.authentication import AuthenticationMiddleware  # noqa: E402
from starlette.requests import HTTPConnection, Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

NAME = "mobile-minerva-readers"
ROWS = [row(NAME, "edge-unique", algorithm="sl-v2",
            traffic_split={"default": {"control": 50, "treatment": 50}},
            targeting={"platform": "mobile", "skin": "minerva", "is_logged_in": True})]
PHONE = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/126.0 Mobile Safari/537.36")
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.mark.parametrize(("agent", "hint", "host", "platform"), [
    (PHONE, None, "example.org", "mobile"),
    (DESKTOP, None, "example.org", "desktop"),
    (DESKTOP, "?1", None, "mobile"),
    (PHONE, "?0", None, "desktop"),
    (DESKTOP, "?0", "en.m.wikipedia.org:443", "mobile"),
    ("WikipediaApp/7.4.0.1234 (iOS 17.0; Phone)", "?1", "en.m.wikipedia.org", "app"),
    (None, None, "en.wikipedia.org", None),
    (None, None, None, None),
])
def test_the_platform_a_request_tells(agent: str | None, hint: str | None, host: str | None,
                                      platform: str | None) -> None:
    assert platform_of(agent, hint, host) == platform


def test_the_skin_a_request_asks_for() -> None:
    assert skin_of("title=Main&useskin=minerva") == "minerva"
    assert skin_of("useskin=") is None and skin_of("skin=vector") is None and skin_of("") is None


class Backend(AuthenticationBackend):
    """Logged in when the request sends ``Authorization: user <name>``."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        scheme, _, name = conn.headers.get("authorization", "").partition(" ")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if scheme == "user" else None


def asgi(client: Client, options: WebOptions | None = None) -> TestClient:
    async def answer(request: Request) -> JSONResponse:
        manager = request.state.splitlab
        handle = manager.get_experiment(NAME)
        return JSONResponse({"attributes": dict(manager.attributes),
                             "group": handle.get_assigned_group(),
                             "reason": str(handle.reason)})

    app = Starlette(routes=[Route("/", answer)], middleware=[  # authentication runs first
        Middleware(AuthenticationMiddleware, backend=Backend()),
        Middleware(SplitlabASGIMiddleware, client=client, options=options)])
    return TestClient(app)


def test_asgi_passes_platform_skin_and_login_to_targeting() -> None:
    client, _, _ = make(ROWS, site="enwiki")
    app = asgi(client)
    targeted = app.get("/?useskin=minerva", headers={"user-agent": PHONE,
                                                     "authorization": "user ada"}).json()
    assert targeted["attributes"] == {"site": "enwiki", "platform": "mobile", "skin": "minerva",
                                      "is_logged_in": True}
    assert targeted["reason"] == "assigned" and targeted["group"] in ("control", "treatment")
    for headers, query in [({"user-agent": PHONE}, "?useskin=minerva"),
                           ({"user-agent": DESKTOP, "authorization": "user ada"},
                            "?useskin=minerva"),
                           ({"user-agent": PHONE, "authorization": "user ada"}, "")]:
        answer = app.get("/" + query, headers=headers).json()
        assert (answer["group"], answer["reason"]) == (None, "targeting"), (headers, answer)
    assert app.get("/", headers={"user-agent": PHONE}).json()["attributes"]["is_logged_in"] is False


def test_a_user_known_mid_request_is_logged_in_for_targeting() -> None:
    """Anonymous to the framework (``is_logged_in`` false), then the account is created."""
    signup = row("registered-only-signup", "mw-user", algorithm="sl-v2",
                 traffic_split={"default": {"control": 50, "treatment": 50}},
                 targeting={"is_logged_in": True})
    client, _, _ = make([signup])

    async def create(request: Request) -> JSONResponse:
        manager = request.state.splitlab
        before = manager.attributes["is_logged_in"]
        manager.update_user(4242)
        return JSONResponse({"before": before, "after": manager.attributes["is_logged_in"],
                             "group": manager.get_experiment(signup["name"]).get_assigned_group()})

    app = Starlette(routes=[Route("/signup", create, methods=["POST"])], middleware=[
        Middleware(AuthenticationMiddleware, backend=Backend()),
        Middleware(SplitlabASGIMiddleware, client=client)])
    answer = TestClient(app).post("/signup").json()
    assert answer["before"] is False and answer["after"] is True
    assert answer["group"] in ("control", "treatment")


def test_the_applications_attributes_go_over_the_requests() -> None:
    client, _, _ = make(ROWS)
    seen: list[Any] = []

    def attributes(scope: Any) -> dict[str, Any]:
        seen.append(scope["type"])
        return {"edit_count": 12, "skin": "vector-2022"}

    answer = asgi(client, WebOptions(attributes=attributes)).get(
        "/?useskin=minerva", headers={"user-agent": DESKTOP}).json()
    assert seen == ["http"]
    assert answer["attributes"] == {"platform": "desktop", "skin": "vector-2022",
                                    "edit_count": 12, "is_logged_in": False}


def test_a_failing_attributes_hook_is_logged_and_the_page_still_served(
    caplog: pytest.LogCaptureFixture
) -> None:
    client, _, _ = make(ROWS)

    def attributes(scope: Any) -> dict[str, Any]:
        raise LookupError("the user store is down")

    response = asgi(client, WebOptions(attributes=attributes)).get(
        "/", headers={"user-agent": PHONE})
    assert response.status_code == 200
    assert response.json()["attributes"] == {"platform": "mobile", "is_logged_in": False}
    assert "WebOptions.attributes failed" in caplog.text


def test_wsgi_reads_the_user_agent_and_remote_user() -> None:
    from wsgiref.util import setup_testing_defaults

    client, _, _ = make(ROWS, site="dewiki")

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        manager = environ[ENVIRON_KEY]
        body = json.dumps({"attributes": dict(manager.attributes),
                           "group": manager.get_experiment(NAME).get_assigned_group()})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body.encode()]

    def call(**extra: str) -> dict[str, Any]:
        environ: dict[str, Any] = {"QUERY_STRING": "useskin=minerva", **extra}
        setup_testing_defaults(environ)
        chunks = SplitlabWSGIMiddleware(app, client)(environ, lambda *a: lambda b: None)
        answer: dict[str, Any] = json.loads(b"".join(chunks))
        return answer

    known = call(HTTP_USER_AGENT=PHONE, REMOTE_USER="ada")
    assert known["attributes"] == {"site": "dewiki", "platform": "mobile", "skin": "minerva",
                                   "is_logged_in": True}
    assert known["group"] in ("control", "treatment")
    unknown = call(HTTP_SEC_CH_UA_MOBILE="?1")  # no REMOTE_USER: the login is not known
    assert unknown["attributes"] == {"site": "dewiki", "platform": "mobile", "skin": "minerva"}
    assert unknown["group"] is None
