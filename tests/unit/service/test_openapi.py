"""The OpenAPI document lists every route and method the service serves, and nothing else,
and is a valid OpenAPI 3.1 document (checked by openapi-spec-validator, an independent tool)."""

from __future__ import annotations

import re
from pathlib import Path

from openapi_spec_validator import validate
from starlette.routing import Route

from splitlab.service.app import create_app
from splitlab.service.openapi import openapi_document
from splitlab.service.settings import Settings

from .service_helpers import whole_service

AUTOMATIC = {"HEAD"}
"""Starlette answers HEAD wherever GET is served; documents do not list it."""

DASHBOARD = "/ui"
"""The dashboard's HTML pages are not API (docs/dashboard.md lists them)."""


def served(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(Settings(data_dir=tmp_path))
    pairs: set[tuple[str, str]] = set()
    for route in app.routes:
        assert isinstance(route, Route), f"{route!r}: a route kind this test does not know"
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {key:path} → {key}
        if path == DASHBOARD or path.startswith(DASHBOARD + "/"):
            continue
        pairs |= {(path, method.lower()) for method in route.methods or ()
                  if method not in AUTOMATIC}
    return pairs


def documented() -> set[tuple[str, str]]:
    return {(path, method) for path, operations in openapi_document()["paths"].items()
            for method in operations}


def test_every_served_route_is_documented_and_every_documented_one_is_served(
        tmp_path: Path) -> None:
    routes = served(tmp_path)
    assert {("/v1/events", "post"), ("/ofrep/v1/evaluate/flags/{key}", "post"),
            ("/client/v1/payload", "post"), ("/.well-known/splitlab-keys.json", "get")} <= routes
    assert routes - documented() == set(), "served but not in the OpenAPI document"
    assert documented() - routes == set(), "documented but not served"


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(openapi_document())


def test_the_served_document_and_page_cover_every_area(tmp_path: Path) -> None:
    with whole_service(tmp_path) as client:
        document = client.get("/openapi.json").json()
        page = client.get("/docs").text
    assert document == openapi_document()
    for path in ("/v1/events", "/ofrep/v1/evaluate/flags/{key}", "/client/v1/payload",
                 "/.well-known/splitlab-keys.json", "/api/v1/experiments/{name}/history"):
        assert f"<code>{path}</code>" in page
