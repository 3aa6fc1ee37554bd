"""The middlewares' signed bootstrap: the unit's payload signed into the page, its body classes
in the first HTML, and the public keys on the application's origin (ASGI and WSGI)."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from splitlab.sdk import Client
from splitlab.sdk.asgi import SplitlabASGIMiddleware
from splitlab.sdk.bootstrap import KEYS_PATH, ClientBootstrap
from splitlab.sdk.client_payload import PayloadOptions, name_key
from splitlab.sdk.web import WebOptions
from splitlab.sdk.wsgi import SplitlabWSGIMiddleware

from .sdk_helpers import NOW, make, oracle, row
from .web_helpers import read_page

pytest.importorskip("cryptography")
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.responses import HTMLResponse
from starlette.testclient import TestClient

from splitlab.sdk.signing import PayloadSigner, verify_envelope

CLIENT_EXP, SERVER_EXP, USER_EXP = "client-banner-exp", "server-only-exp", "client-user-exp"
ROWS = [row(CLIENT_EXP, "edge-unique"), row(SERVER_EXP, "edge-unique"), row(USER_EXP, "mw-user")]
ANON = "bootstrap-unit-00000001"
GROUPS = ["control", "treatment"]
PAGE = b"<!doctype html><html><head><title>t</title></head><body class='page'>hi</body></html>"


def options(signer: PayloadSigner, salt: str = "") -> WebOptions:
    payload = PayloadOptions(client_experiments={CLIENT_EXP, USER_EXP}, salt=salt)
    return WebOptions(bootstrap=ClientBootstrap(signer, payload))


def asgi_client(client: Client, web: WebOptions) -> TestClient:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await HTMLResponse(PAGE)(scope, receive, send)

    return TestClient(SplitlabASGIMiddleware(app, client, web), cookies={"splitlab_anon": ANON})


def wsgi_get(client: Client, web: WebOptions, path: str = "/") -> tuple[str, bytes]:
    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        start("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [PAGE]

    answer: list[str] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
               "HTTP_COOKIE": f"splitlab_anon={ANON}", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO()}
    body = b"".join(SplitlabWSGIMiddleware(app, client, web)(
        environ, lambda status, headers, exc=None: answer.append(status)))
    return answer[0], body


@pytest.fixture
def signer() -> PayloadSigner:
    return PayloadSigner(Ed25519PrivateKey.generate())


def expected_group(name: str) -> str:
    group = oracle(ANON, name, GROUPS, 1.0)
    assert group is not None
    return group


def check_page(text: str, signer: PayloadSigner) -> dict[str, Any]:
    page = read_page(text)
    assert page.blocks == 1 and page.config is not None
    payload = verify_envelope(page.config, signer.jwks(), now=NOW.timestamp())
    group = expected_group(CLIENT_EXP)
    # only the client experiment the unit's identifiers reach; mw-user has no identifier yet
    assert payload["experiments"] == {CLIENT_EXP: {
        "group": group,
        "subject_id": hashlib.sha256((ANON + CLIENT_EXP).encode()).hexdigest(),
        "exposure_version": payload["experiments"][CLIENT_EXP]["exposure_version"],
        "sampling_unit": "edge-unique",
        "stream_name": "product_metrics.web_base",
        "schema_id": "/analytics/product_metrics/web/base/2.1.0"}}
    # every edge-unique experiment is decorated (as without a bootstrap), the client one included
    assert set(page.body_classes) == {"page", *classes(CLIENT_EXP, group),
                                      *classes(SERVER_EXP, expected_group(SERVER_EXP))}
    return payload


def classes(name: str, group: str) -> list[str]:
    return [f"xlab-experiment-{name}", f"xlab-experiment-{name}-{group}"]


def test_asgi_page_carries_the_signed_payload_and_its_classes(signer: PayloadSigner) -> None:
    client, _, _ = make(ROWS)
    http = asgi_client(client, options(signer))
    check_page(http.get("/").text, signer)


def test_wsgi_page_carries_the_signed_payload_and_its_classes(signer: PayloadSigner) -> None:
    client, _, _ = make(ROWS)
    status, body = wsgi_get(client, options(signer))
    assert status.startswith("200")
    check_page(body.decode(), signer)


def test_keys_are_published_on_the_application_origin(signer: PayloadSigner) -> None:
    client, _, _ = make(ROWS)
    response = asgi_client(client, options(signer)).get(KEYS_PATH)
    assert response.json() == signer.jwks()
    assert response.headers["cache-control"] == "public, max-age=3600"
    status, body = wsgi_get(client, options(signer), KEYS_PATH)
    assert status.startswith("200") and json.loads(body) == signer.jwks()
    # without a bootstrap the path is the application's
    assert asgi_client(client, WebOptions()).get(KEYS_PATH).text.startswith("<!doctype")


def test_an_override_wins_over_the_payload_class(signer: PayloadSigner) -> None:
    client, _, _ = make(ROWS)
    other = next(g for g in GROUPS if g != expected_group(CLIENT_EXP))
    response = asgi_client(client, options(signer)).get(f"/?mpo={CLIENT_EXP}:{other}")
    found = set(read_page(response.text).body_classes)
    assert set(classes(CLIENT_EXP, other)) <= found
    assert f"xlab-experiment-{CLIENT_EXP}-{expected_group(CLIENT_EXP)}" not in found


def test_a_payload_with_hashed_names_adds_no_classes(signer: PayloadSigner) -> None:
    client, _, _ = make([row(USER_EXP, "mw-user")])

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["state"]["splitlab"].update_user(42)  # the mw-user experiment enrolls server-side
        await HTMLResponse(PAGE)(scope, receive, send)

    hashed = TestClient(SplitlabASGIMiddleware(app, client, options(signer, salt="s3cret")))
    page = read_page(hashed.get("/").text)
    assert page.config is not None
    payload = verify_envelope(page.config, signer.jwks(), now=NOW.timestamp())
    assert set(payload["experiments"]) == {name_key(USER_EXP, "s3cret")}
    # the classes are those of the server's own enrollment, none come from the hashed payload
    plain = TestClient(SplitlabASGIMiddleware(app, client, WebOptions()))
    assert page.body_classes == read_page(plain.get("/").text).body_classes
    assert page.body_classes == ["page", *classes(USER_EXP, str(oracle(42, USER_EXP, GROUPS, 1.0)))]


def test_a_condition_left_to_the_page_travels_signed_and_adds_no_class(
    signer: PayloadSigner,
) -> None:
    condition = {"viewport": {"$gte": 1000}, "platform": "desktop"}
    client, _, _ = make([row(CLIENT_EXP, "edge-unique", algorithm="sl-v2", targeting=condition,
                             traffic_split={"default": {"control": 50, "treatment": 50}})])
    response = asgi_client(client, options(signer)).get(
        "/", headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64)", "sec-ch-ua-mobile": "?0"})
    page = read_page(response.text)
    assert page.config is not None
    payload = verify_envelope(page.config, signer.jwks(), now=NOW.timestamp())
    entry = payload["experiments"][CLIENT_EXP]
    # 50/50 sl-v2 is tk-v1 at rate 1; the platform the middleware read travels, nothing else
    assert entry["group"] == expected_group(CLIENT_EXP)
    assert (entry["targeting"], entry["attributes"]) == (condition, {"platform": "desktop"})
    assert page.body_classes == ["page"]  # the server does not know the page's answer


class BrokenSigner:
    def sign(self, payload: Any) -> dict[str, str]:
        raise OSError("key file gone")

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": []}


def test_a_failing_signer_leaves_the_page_working_without_a_block() -> None:
    client, _, _ = make([row(CLIENT_EXP, "mw-user")])
    web = WebOptions(bootstrap=ClientBootstrap(BrokenSigner()))
    response = asgi_client(client, web).get("/")
    assert response.status_code == 200
    page = read_page(response.text)
    assert page.blocks == 0 and page.body_classes == ["page"]
