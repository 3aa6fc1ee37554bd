"""FastAPI with the ASGI middleware: compression in every position, streams, HEAD, errors, the
dependency. Pages are read back as the test client (httpx) decodes them, which is independent
of the SDK's codecs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from splitlab.sdk import Client
from splitlab.sdk.asgi import SplitlabASGIMiddleware

from .compress_helpers import PAGE, Compress, check_page
from .sdk_helpers import make, row

fastapi = pytest.importorskip("fastapi")
from fastapi import FastAPI  # noqa: E402
from fastapi.responses import HTMLResponse, StreamingResponse  # noqa: E402
from starlette.middleware.gzip import GZipMiddleware  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from splitlab.sdk.fastapi import SplitlabManager  # noqa: E402

ROWS = [row("anon-banner-test", "edge-unique")]
ANON = "K" * 22
POSITIONS = ["gzip-outside", "gzip-inside", "wrapped-gzip", "deflate-inside", "br-inside",
             "none"]


def app_for(client: Client, position: str) -> object:
    app = FastAPI()

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def page(manager: SplitlabManager) -> str:
        manager.get_experiment("anon-banner-test").send_exposure()
        return PAGE

    @app.get("/stream")
    def stream(manager: SplitlabManager) -> StreamingResponse:
        manager.get_experiment("anon-banner-test").send_exposure()

        async def parts() -> AsyncIterator[bytes]:
            for start in range(0, len(PAGE), 97):
                yield PAGE[start:start + 97].encode()
        return StreamingResponse(parts(), media_type="text/html")

    @app.get("/api")
    def api(manager: SplitlabManager) -> dict[str, object]:
        handle = manager.get_experiment("anon-banner-test")
        handle.send_exposure()
        return {"group": handle.get_assigned_group()}

    @app.get("/boom", response_class=HTMLResponse)
    def boom(manager: SplitlabManager) -> str:
        manager.get_experiment("anon-banner-test").send_exposure()
        raise RuntimeError("view failed")

    if position == "gzip-outside":  # added last: outermost, compresses the decorated page
        app.add_middleware(SplitlabASGIMiddleware, client=client)
        app.add_middleware(GZipMiddleware, minimum_size=100)
    elif position == "gzip-inside":  # the case: splitlab sees gzip
        app.add_middleware(GZipMiddleware, minimum_size=100)
        app.add_middleware(SplitlabASGIMiddleware, client=client)
    elif position == "wrapped-gzip":
        app.add_middleware(GZipMiddleware, minimum_size=100)
        return SplitlabASGIMiddleware(app, client)
    elif position in ("deflate-inside", "br-inside"):
        return SplitlabASGIMiddleware(Compress(app, position.split("-")[0]), client)
    else:
        app.add_middleware(SplitlabASGIMiddleware, client=client)
    return app


def build_tester(client: Client, position: str) -> TestClient:
    tester = TestClient(app_for(client, position), raise_server_exceptions=False)  # type: ignore[arg-type]
    tester.cookies.set("splitlab_anon", ANON)
    return tester


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("path", ["/", "/stream"])
def test_pages_are_decorated_in_every_position(position: str, path: str) -> None:
    client, _, sender = make(ROWS)
    response = build_tester(client, position).get(path, headers={"accept-encoding": "gzip, br"})
    assert response.status_code == 200
    check_page(response.text, ANON)
    if position != "none":
        assert response.headers["content-encoding"] in ("gzip", "deflate", "br")
    if "content-length" in response.headers:  # the length of the bytes as sent
        assert int(response.headers["content-length"]) == response.num_bytes_downloaded
    (event,) = sender.events
    assert event["action"] == "experiment_exposure"
    assert client.metrics.value("splitlab_sdk_undecorated_pages_total", {"reason": "encoding"}) == 0


@pytest.mark.parametrize("position", ["gzip-inside", "none"])
def test_head_has_the_get_headers_and_sends_no_exposure(position: str) -> None:
    client, _, sender = make(ROWS)
    tester = build_tester(client, position)
    get = tester.get("/", headers={"accept-encoding": "gzip"})
    head = tester.head("/", headers={"accept-encoding": "gzip"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers.get("content-length") == get.headers.get("content-length")
    assert [e["action"] for e in sender.events] == ["experiment_exposure"]  # the GET's only
    assert client.metrics.value("splitlab_sdk_events_dropped_total",
                                {"reason": "head_request"}) == 1


def test_api_sends_its_exposure_and_errors_send_none() -> None:
    client, _, sender = make(ROWS)
    tester = build_tester(client, "gzip-inside")
    assert tester.get("/api").json()["group"] is not None
    assert tester.get("/boom").status_code == 500
    assert [e["action"] for e in sender.events] == ["experiment_exposure"]
    assert client.metrics.value("splitlab_sdk_events_dropped_total",
                                {"reason": "request_failed"}) == 1


def test_the_dependency_says_what_is_missing() -> None:
    app = FastAPI()

    @app.get("/")
    def page(manager: SplitlabManager) -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="SplitlabASGIMiddleware"):
        TestClient(app).get("/")


def test_importing_the_sdk_imports_no_framework() -> None:
    code = ("import sys, splitlab.sdk, splitlab.sdk.asgi, splitlab.sdk.wsgi, splitlab.sdk.page; "
            "print(sorted(m for m in ('fastapi', 'django', 'starlette', 'brotli') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
