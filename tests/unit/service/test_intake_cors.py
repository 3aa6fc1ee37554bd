"""CORS on ``POST /v1/events``: preflight answers and the allow-origin header, per the Fetch
standard's rules (a browser sends the preflighted request only on a 2xx answer that names its
origin, method and headers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from splitlab.service.settings import Settings
from tests.unit.intake.conftest import web_event

from .test_intake_http import Service, make_service

PAGE = "https://shop.example"


@pytest.fixture
def cors(tmp_path: Path) -> Iterator[Service]:
    yield from make_service(tmp_path, events_cors_origins=frozenset({PAGE}))


def preflight(service: Service, origin: str, method: str = "POST",
              headers: str = "content-type") -> Any:
    return service.client.options("/v1/events", headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers})


def test_preflight_allows_a_configured_origin(cors: Service) -> None:
    response = preflight(cors, PAGE, headers="Content-Type, X-Request-Id, Content-Encoding")
    assert response.status_code == 204
    headers = response.headers
    assert headers["access-control-allow-origin"] == PAGE
    assert headers["access-control-allow-methods"] == "POST"
    assert {h.strip() for h in headers["access-control-allow-headers"].split(",")} == {
        "content-type", "x-request-id", "content-encoding"}


def test_preflight_refuses_other_origins_methods_and_headers(cors: Service) -> None:
    for response in (preflight(cors, "https://evil.example"), preflight(cors, PAGE, "PUT"),
                     preflight(cors, PAGE, headers="content-type, authorization")):
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers


def test_a_post_from_an_allowed_origin_is_readable_by_the_page(cors: Service) -> None:
    allowed = cors.post([web_event()], headers={"Origin": PAGE})
    assert allowed.status_code == 201
    assert allowed.headers["access-control-allow-origin"] == PAGE
    assert allowed.headers["access-control-expose-headers"] == "X-Status-Message"
    assert allowed.headers["x-status-message"] == "All 1 out of 1 events were accepted."
    other = cors.post([web_event()], headers={"Origin": "https://evil.example"})
    assert other.status_code == 201  # stored (like any simple request); the page cannot read it
    assert "access-control-allow-origin" not in other.headers
    assert len(cors.stored()) == 2


def test_no_cors_without_configured_origins(tmp_path: Path) -> None:
    for service in make_service(tmp_path):
        assert preflight(service, PAGE).status_code == 403
        response = service.post([web_event()], headers={"Origin": PAGE})
        assert "access-control-allow-origin" not in response.headers


def test_a_wildcard_allows_any_origin(tmp_path: Path) -> None:
    for service in make_service(tmp_path, events_cors_origins=frozenset({"*"})):
        response = preflight(service, "https://any.example")
        assert response.headers["access-control-allow-origin"] == "*"


def test_origins_come_from_the_environment() -> None:
    settings = Settings.from_env({"SPLITLAB_EVENTS_CORS_ORIGINS": f"{PAGE}, http://localhost:3000"})
    assert settings.events_cors_origins == frozenset({PAGE, "http://localhost:3000"})
    assert Settings.from_env({}).events_cors_origins == frozenset()
