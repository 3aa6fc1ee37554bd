"""What Test Kitchen's MediaWiki extension reads from splitlab (issue 16): the served experiment
and instrument rows never hold null where it reads a string or a date, whatever path saved them
(admin API, CLI import, demo data), and each served ``exposure_version`` is the one Test Kitchen
computes from the served bytes (the core's digest, itself checked against Test Kitchen's PHP in
tests/vectors/exposure-version.json)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from splitlab.core.exposure import exposure_version
from splitlab.registry.client import RegistryClient
from splitlab.service.app import create_app
from splitlab.service.settings import Settings

pytestmark = pytest.mark.integration
TOKEN = "mediawiki-test-token"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXPERIMENT_STRINGS = ("name", "user_identifier_type", "stream_name", "schema_id")
INSTRUMENT_STRINGS = ("name", "stream_name", "schema_id", "sample_unit")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", admin_token=TOKEN, demo=True)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def minimal_experiment(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "groups": ["control", "treatment"], "sample_rate": {"default": 0.5},
            "user_identifier_type": "edge-unique", **extra}


def save_through_every_path(client: TestClient) -> None:
    """Rows as minimal as each path allows (the demo rows are already there)."""
    created = client.post("/api/v1/experiments", headers=AUTH,
                          json=minimal_experiment("admin-minimal-exp"))
    assert created.status_code == 201, created.text
    nulls = minimal_experiment("admin-nulls-exp", start=None, end=None, stream_name=None,
                               schema_id=None, contextual_attributes=None)
    nulls["sample_rate"] = {"default": 0.1, "0": ["frwiki"], "1": ["enwiki"]}
    assert client.post("/api/v1/experiments", headers=AUTH, json=nulls).status_code == 201
    patched = client.patch("/api/v1/experiments/admin-minimal-exp", json={
        "stream_name": None, "schema_id": None, "end": None,
        "contextual_attributes": ["page_namespace"]},
        headers={**AUTH, "If-Match": created.headers["etag"]})
    assert patched.status_code == 200, patched.text
    assert client.post("/api/v1/instruments", headers=AUTH, json={
        "name": "admin-minimal-instrument", "sample_rate": {"default": 0.2}}).status_code == 201
    # the CLI's import, talking to the app in this process
    registry = RegistryClient("http://testserver", TOKEN, transport=client._transport)
    imported = registry.import_document({
        "experiments": [minimal_experiment("cli-imported-exp", groups=["10", "9", "b"])],
        "instruments": [{"name": "cli-imported-instrument", "sample_rate": {"default": 1},
                         "sample_unit": "pageview", "end": None}]})
    assert [i.action for i in imported] == ["created", "created"]
    again = registry.import_document({
        "experiments": [minimal_experiment("cli-imported-exp", groups=["10", "9", "b"])]})
    assert [i.action for i in again] == ["unchanged"]


def nulls_in(value: Any, path: str = "") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls_in(v, f"{path}[{i}]")]
    return []


def check_dates(row: dict[str, Any]) -> None:
    for field in ("start", "end"):
        assert isinstance(row[field], str) and RFC3339.fullmatch(row[field]), (row, field)
        datetime.fromisoformat(row[field].replace("Z", "+00:00"))


def test_served_rows_hold_what_test_kitchen_reads(client: TestClient) -> None:
    save_through_every_path(client)
    documents = {path: client.get(path) for path in (
        "/api/v1/experiments", "/api/v1/experiments?format=config&authority=mediawiki",
        "/api/v1/instruments")}
    experiments = json.loads(documents["/api/v1/experiments"].content)  # key order as served
    assert documents["/api/v1/experiments?format=config&authority=mediawiki"].content == \
        documents["/api/v1/experiments"].content
    assert {r["name"] for r in experiments} == {
        "sticky-header-2026", "leveling-up-notifications", "admin-minimal-exp",
        "admin-nulls-exp", "cli-imported-exp"}
    for row in experiments:
        assert nulls_in(row) == [], row
        check_dates(row)
        for field in EXPERIMENT_STRINGS:
            assert isinstance(row[field], str) and row[field].strip(), (row, field)
        assert isinstance(row["contextual_attributes"], list)
        assert row["exposure_version"] == exposure_version(row), row["name"]
    minimal = next(r for r in experiments if r["name"] == "admin-minimal-exp")
    assert (minimal["stream_name"], minimal["schema_id"], minimal["end"]) == (
        "product_metrics.web_base", "/analytics/product_metrics/web/base/2.1.0",
        "9999-12-31T23:59:59Z")
    instruments = json.loads(documents["/api/v1/instruments"].content)
    assert {r["name"] for r in instruments} == {
        "link-click-instrument", "admin-minimal-instrument", "cli-imported-instrument"}
    for row in instruments:
        assert nulls_in(row) == [], row
        check_dates(row)
        for field in INSTRUMENT_STRINGS:
            assert isinstance(row[field], str) and row[field].strip(), (row, field)
        assert row["sample_unit"] in ("session", "pageview")
    units = {r["name"]: r["sample_unit"] for r in instruments}
    assert units["admin-minimal-instrument"] == "session"
    assert units["cli-imported-instrument"] == "pageview"


@pytest.mark.parametrize(("path", "row", "field"), [
    ("/api/v1/experiments", minimal_experiment("blank-stream-exp", stream_name="  "),
     "stream_name"),
    ("/api/v1/experiments", minimal_experiment("padded-schema-exp", schema_id=" /a/b/1.0.0"),
     "schema_id"),
    ("/api/v1/instruments", {"name": "device-unit-instrument", "sample_rate": {"default": 1},
                             "sample_unit": "device"}, "sample_unit"),
    ("/api/v1/instruments", {"name": "numeric-stream-instrument", "sample_rate": {"default": 1},
                             "stream_name": 7}, "stream_name"),
])
def test_a_row_test_kitchen_could_not_use_is_refused_with_the_field(
        client: TestClient, path: str, row: dict[str, Any], field: str) -> None:
    response = client.post(path, headers=AUTH, json=row)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert response.json()["message"]
