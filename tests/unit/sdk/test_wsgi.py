"""The WSGI middleware with a real Flask app and Flask's test client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from splitlab.core.assignment import subject_id
from splitlab.core.headers import parse_enrollments_header
from splitlab.sdk import Client, ExperimentManager
from splitlab.sdk.web import ENVIRON_KEY
from splitlab.sdk.wsgi import SplitlabWSGIMiddleware

from .sdk_helpers import make, oracle, row
from .web_helpers import read_page

flask = pytest.importorskip("flask")

GROUPS = ["control", "treatment"]
ROWS = [row("anon-banner-test", "edge-unique"), row("signup-flow-test", "mw-user")]


def build(client: Client) -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/")
    def page() -> str:
        return '<html><head></head><body data-x="1"><p>hi</p></body></html>'

    @app.get("/api")
    def api() -> dict[str, object]:
        manager = flask.request.environ[ENVIRON_KEY]
        return {"group": manager.get_experiment("anon-banner-test").get_assigned_group()}

    @app.post("/signup")
    def signup() -> dict[str, object]:
        manager = flask.request.environ[ENVIRON_KEY]
        manager.update_user(int(flask.request.args["uid"]))
        return {"sent": manager.log_enrollment("signup-flow-test", "account_creation")}

    @app.get("/direct")
    def direct() -> dict[str, object]:  # the manager built by hand from Flask's own objects
        manager = client.manager(anonymous_id="J" * 20, headers=flask.request.headers,
                                 query_string=flask.request.query_string.decode())
        return {"group": manager.get_experiment("anon-banner-test").get_assigned_group()}

    @app.get("/stream")
    def stream() -> flask.Response:
        def parts() -> Iterator[str]:
            yield "<html><body>"
            yield "<p>streamed</p></body></html>"
        return flask.Response(parts(), mimetype="text/html")

    app.wsgi_app = SplitlabWSGIMiddleware(app.wsgi_app, client)  # type: ignore[method-assign]
    return app


def test_html_page_is_decorated_and_cookie_issued() -> None:
    client, _, _ = make(ROWS)
    response = build(client).test_client().get("/")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    anonymous = cookie.split(";")[0].split("=", 1)[1]
    group = oracle(anonymous, "anon-banner-test", GROUPS, 1.0)
    text = response.get_data(as_text=True)
    page = read_page(text)
    assert page.config is not None and page.config["assigned"] == {"anon-banner-test": group}
    assert page.body_classes == ["xlab-experiment-anon-banner-test",
                                 f"xlab-experiment-anon-banner-test-{group}"]
    assert 'data-x="1"' in text
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_api_gets_the_header_and_the_same_group_as_the_page() -> None:
    client, _, _ = make(ROWS)
    test_client = build(client).test_client()
    test_client.set_cookie("splitlab_anon", "B" * 24)
    response = test_client.get("/api")
    group = oracle("B" * 24, "anon-banner-test", GROUPS, 1.0)
    assert response.get_json() == {"group": group}
    assert "Set-Cookie" not in response.headers
    assert parse_enrollments_header(response.headers["X-Experiment-Enrollments"]) == \
        {"anon-banner-test": group}


def test_https_cookie_is_secure_and_signup_sends_enrollment() -> None:
    client, _, sender = make(ROWS)
    response = build(client).test_client().post("/signup?uid=99",
                                                 base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.get_json() == {"sent": True}
    (event,) = sender.events
    assert event["experiment"]["assigned"] == oracle(99, "signup-flow-test", GROUPS, 1.0)


def test_streamed_html_and_edge_header() -> None:
    client, _, _ = make(ROWS)
    response = build(client).test_client().get(
        "/stream", headers={"X-Experiment-Enrollments": "anon-banner-test=treatment;"})
    page = read_page(response.get_data(as_text=True))
    assert page.config is not None
    assert page.config["assigned"] == {"anon-banner-test": "treatment"}
    assert "<p>streamed</p>" in response.get_data(as_text=True)


def test_raw_wsgi_lazy_generator_is_streamed_and_closed() -> None:
    client, _, _ = make(ROWS)
    closed: list[bool] = []

    class Body:
        def __init__(self, start_response):  # type: ignore[no-untyped-def]
            self.start_response = start_response

        def __iter__(self):  # type: ignore[no-untyped-def]
            self.start_response("200 OK", [("Content-Type", "application/json")])
            yield b'{"a":'
            yield b"1}"

        def close(self) -> None:
            closed.append(True)

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        return Body(start_response)

    seen: dict[str, object] = {}

    def start_response(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
        seen["status"], seen["headers"] = status, dict(headers)
        return lambda data: None

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "",
               "HTTP_COOKIE": "splitlab_anon=" + "H" * 20, "wsgi.url_scheme": "http"}
    result = SplitlabWSGIMiddleware(app, client)(environ, start_response)
    assert b"".join(result) == b'{"a":1}'
    result.close()  # type: ignore[attr-defined]
    assert closed == [True]
    assert seen["status"] == "200 OK"
    headers = seen["headers"]
    assert isinstance(headers, dict) and "Set-Cookie" not in headers
    assert parse_enrollments_header(headers["X-Experiment-Enrollments"]) == {
        "anon-banner-test": oracle("H" * 20, "anon-banner-test", GROUPS, 1.0)}
    manager = environ[ENVIRON_KEY]
    assert isinstance(manager, ExperimentManager)
    assert manager.get_experiment("anon-banner-test").subject_id == subject_id(
        "H" * 20, "anon-banner-test")


def test_flask_headers_object_is_accepted_by_the_client() -> None:
    client, _, _ = make(ROWS)
    response = build(client).test_client().get(
        "/direct", headers={"X-Experiment-Enrollments": "anon-banner-test=treatment;"})
    assert response.get_json() == {"group": "treatment"}
    forced = build(client).test_client().get("/direct?mpo=anon-banner-test:control")
    assert forced.get_json() == {"group": "control"}


class FailingBody:
    """An app iterable that yields a first chunk, then raises; counts its close() calls."""

    def __init__(self, start_response, headers) -> None:  # type: ignore[no-untyped-def]
        start_response("200 OK", headers)
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        yield b"<html><head></head>"
        raise OSError("the template failed half-way")

    def close(self) -> None:
        self.closed += 1


def run_wsgi(app, method: str = "GET", extra: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    client, _, sender = make(ROWS)
    seen: dict[str, object] = {}

    def start_response(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
        seen["status"], seen["headers"] = status, dict(headers)
        return lambda data: None

    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/", "QUERY_STRING": "",
               "HTTP_COOKIE": "splitlab_anon=" + "H" * 20, "wsgi.url_scheme": "http",
               **(extra or {})}
    return SplitlabWSGIMiddleware(app, client)(environ, start_response), seen, client, sender


@pytest.mark.parametrize("length", [True, False])
def test_a_failing_html_body_is_closed_exactly_once(length: bool) -> None:
    bodies: list[FailingBody] = []

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        headers = [("Content-Type", "text/html")] + ([("Content-Length", "99")] if length else [])
        bodies.append(FailingBody(start_response, headers))
        return bodies[-1]

    with pytest.raises(OSError):
        result, _, _, _ = run_wsgi(app)
        try:  # the server's part: iterate, then close whatever happened
            b"".join(result)
        finally:
            result.close()  # type: ignore[attr-defined]
    assert bodies[0].closed == 1


def test_file_wrapper_responses_that_are_not_html_keep_their_fast_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wsgiref.util import FileWrapper

    data = tmp_path / "data.bin"
    data.write_bytes(b"\x00" * 1000)
    wrappers: list[object] = []

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        wrappers.append(environ["wsgi.file_wrapper"](data.open("rb")))
        return wrappers[-1]

    result, seen, _, _ = run_wsgi(app, extra={"wsgi.file_wrapper": FileWrapper})
    assert result is wrappers[0]  # the server still sees its own file wrapper
    assert "X-Experiment-Enrollments" in seen["headers"]  # type: ignore[operator]
    result.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
@pytest.mark.parametrize("length", [True, False])
def test_compressed_pages_are_decoded_decorated_and_re_encoded(coding: str, length: bool) -> None:
    from .compress_helpers import PAGE, check_page, compress
    from .web_helpers import read_page

    body = compress(coding, PAGE.encode())

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", coding)]
        start_response("200 OK", headers + ([("Content-Length", str(len(body)))]
                                            if length else []))
        return iter([body[:40], body[40:]])

    result, seen, _, _ = run_wsgi(app)
    sent = b"".join(result)
    headers = seen["headers"]
    assert isinstance(headers, dict) and headers["Content-Encoding"] == coding
    assert ("Content-Length" in headers) is length
    if length:
        assert int(headers["Content-Length"]) == len(sent)
    text = _decompress(coding, sent).decode()
    check_page(text, "H" * 20)
    assert read_page(text).blocks == 1


def _decompress(coding: str, data: bytes) -> bytes:
    import gzip
    import zlib

    import brotli

    if coding == "br":
        return bytes(brotli.decompress(data))
    return zlib.decompress(data) if coding == "deflate" else gzip.decompress(data)
