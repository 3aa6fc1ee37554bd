"""Raw endpoints (the intake's ``POST /v1/events``) are served ahead of Starlette's middleware and
router (:class:`splitlab.service.app.Service`): they must still be counted in the metrics and
answer errors exactly as the usual way does.

The oracle for the error answers is the usual way itself: the same exception raised by an
ordinary route of the same application must give the same status, headers and body.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from splitlab.errors import NotFoundError, RateLimitedError, SinkError
from splitlab.service.api_support import RawEndpoint
from splitlab.service.app import create_app
from splitlab.service.metrics import Metrics
from splitlab.service.settings import Settings


class Boom(Exception):
    """Not an error of the tree: a 500 that is re-raised after the answer."""


ERRORS: dict[str, Exception] = {
    "none": NotFoundError("no such thing"), "busy": SinkError("the sink is down"),
    "slow": RateLimitedError("slow down", 7), "boom": Boom("internal detail")}


class Area:
    """A component with one raw endpoint and one ordinary route that raise the same errors."""

    def __init__(self) -> None:
        self.calls = 0

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/raw", RawEndpoint(self.raw), methods=["POST"]),
                Route("/plain", self.plain, methods=["POST"])]

    async def raw(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        error = scope["query_string"].decode()
        if error == "late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise Boom("after the answer began")
        if error:
            raise ERRORS[error]
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def plain(self, request: Request) -> Response:
        raise ERRORS[request.url.query]

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def sample(registry: CollectorRegistry, route: str, status: int) -> float:
    value = registry.get_sample_value("splitlab_http_requests_total", {
        "route": route, "method": "POST", "status": str(status)})
    return value or 0.0


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Area, Metrics, TestClient]:
    area, metrics = Area(), Metrics()
    app = create_app(Settings(data_dir=tmp_path), [area], metrics)
    return area, metrics, TestClient(app, raise_server_exceptions=False)


def test_a_direct_route_answers_and_is_counted(setup: tuple[Area, Metrics, TestClient]) -> None:
    area, metrics, client = setup
    for _ in range(3):
        assert client.post("/raw").status_code == 201
    assert area.calls == 3
    assert sample(metrics.registry, "/raw", 201) == 3
    assert metrics.registry.get_sample_value(
        "splitlab_http_request_duration_seconds_count", {"route": "/raw"}) == 3


def test_a_direct_route_skips_the_middleware_stack(tmp_path: Path) -> None:
    """Starlette builds its middleware stack on the first request that goes through it."""
    app = create_app(Settings(data_dir=tmp_path), [Area()], Metrics())
    client = TestClient(app)
    assert client.post("/raw").status_code == 201
    assert app.middleware_stack is None
    assert client.post("/plain?none").status_code == 404
    assert app.middleware_stack is not None


def test_other_methods_take_the_usual_way(setup: tuple[Area, Metrics, TestClient]) -> None:
    area, _, client = setup
    response = client.get("/raw")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert area.calls == 0


@pytest.mark.parametrize("error", sorted(ERRORS))
def test_errors_answer_as_the_usual_way_does(setup: tuple[Area, Metrics, TestClient],
                                             error: str) -> None:
    _, metrics, client = setup
    direct, usual = client.post(f"/raw?{error}"), client.post(f"/plain?{error}")
    assert direct.status_code == usual.status_code >= 400
    assert direct.content == usual.content
    headers = {k: v for k, v in direct.headers.items() if k != "date"}
    assert headers == {k: v for k, v in usual.headers.items() if k != "date"}
    assert sample(metrics.registry, "/raw", direct.status_code) == 1
    if error == "boom":
        assert b"internal detail" not in direct.content


def test_an_error_outside_the_tree_is_raised_after_the_answer(tmp_path: Path) -> None:
    """As Starlette does, so that the server logs it with its traceback."""
    app = create_app(Settings(data_dir=tmp_path), [Area()], Metrics())
    with pytest.raises(Boom):
        TestClient(app).post("/raw?boom")
    assert TestClient(app).post("/raw?none").status_code == 404  # errors of the tree are not


def test_an_error_after_the_answer_began_is_counted_with_its_status(
        setup: tuple[Area, Metrics, TestClient]) -> None:
    _, metrics, client = setup
    assert client.post("/raw?late").status_code == 200
    assert sample(metrics.registry, "/raw", 200) == 1


def test_under_a_root_path_the_route_is_still_served(tmp_path: Path) -> None:
    area, metrics = Area(), Metrics()
    app = create_app(Settings(data_dir=tmp_path), [area], metrics)
    client = TestClient(app, root_path="/prefix")
    assert client.post("/raw").status_code == 201
    assert area.calls == 1
    assert sample(metrics.registry, "/raw", 201) == 1
