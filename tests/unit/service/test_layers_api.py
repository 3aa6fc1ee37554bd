"""The admin API of layers and holdouts (issue 14) through the whole service, on SQLite and
PostgreSQL: list, show (a layer with its occupancy), create, patch, history, end, admin auth,
and the refusals of experiment rows that name them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from splitlab.registry.schema import Tables, drop_all, engine_for

from .service_helpers import ADMIN, whole_service


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    settings: dict[str, Any] = {}
    if request.param == "postgresql":
        settings = {"database_url": request.getfixturevalue("postgres_url"),
                    "table_prefix": f"t{uuid.uuid4().hex[:10]}_"}
    with whole_service(tmp_path, **settings) as test:
        yield test
    if settings:
        engine = engine_for(settings["database_url"], tmp_path)
        drop_all(engine, Tables.build(settings["table_prefix"]))
        engine.dispose()


def iso(days: float) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def experiment(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "groups": ["control", "treatment"], "algorithm": "sl-v2",
            "traffic_split": {"default": {"control": 10, "treatment": 10}},
            "user_identifier_type": "mw-user", "start": iso(-1), "end": iso(30), **fields}


def test_layers_and_holdouts_through_the_admin_api(client: TestClient) -> None:
    row = {"name": "reading", "description": "article pages"}
    assert client.post("/api/v1/layers", json=row).status_code == 401
    created = client.post("/api/v1/layers", json=row, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/layers/reading"
    assert created.json()["row"] == {**row, "version": 1}
    held = client.post("/api/v1/holdouts", json={"name": "global-2026", "percent": 2},
                       headers=ADMIN)
    assert held.status_code == 201 and held.json()["status"] == "running"
    assert [r["name"] for r in client.get("/api/v1/layers").json()] == ["reading"]
    assert client.get("/api/v1/holdouts", params={"format": "analytics"}).json() == [
        {"name": "global-2026", "percent": 2, "version": 1, "status": "running"}]
    assert client.get("/api/v1/layers", params={"authority": "varnish"}).status_code == 400

    refused = client.post("/api/v1/holdouts", json={"name": "bad-one", "percent": 0.0001},
                          headers=ADMIN)
    assert refused.status_code == 422
    assert refused.json()["field"] == "percent"

    etag = client.get("/api/v1/holdouts/global-2026").headers["etag"]
    assert client.patch("/api/v1/holdouts/global-2026", json={"percent": 3},
                        headers=ADMIN).status_code == 428
    patched = client.patch("/api/v1/holdouts/global-2026", json={"percent": 3},
                           headers={**ADMIN, "If-Match": etag})
    assert patched.status_code == 200 and patched.json()["row"]["percent"] == 3
    history = client.get("/api/v1/holdouts/global-2026/history").json()["history"]
    assert [(h["action"], h["changes"].get("percent")) for h in history] == [
        ("create", [None, 2]), ("update", [2, 3])]
    ended = client.post("/api/v1/layers/reading/end", headers=ADMIN)
    assert ended.status_code == 200 and ended.json()["ended_at"] is not None
    assert client.get("/api/v1/layers").json() == []
    assert client.get("/api/v1/layers/nowhere").status_code == 404


def test_experiments_name_layers_and_holdouts(client: TestClient) -> None:
    missing = client.post("/api/v1/experiments", json=experiment(
        "layered-api-exp", layer={"name": "reading", "bins": 20_000}), headers=ADMIN)
    assert missing.status_code == 422
    assert missing.json()["field"] == "layer.name"
    assert "POST /api/v1/layers" in missing.json()["message"]
    for path, row in (("/api/v1/layers", {"name": "reading"}),
                      ("/api/v1/holdouts", {"name": "global-2026", "percent": 2.5})):
        assert client.post(path, json=row, headers=ADMIN).status_code == 201

    first = client.post("/api/v1/experiments", json=experiment(
        "layered-api-exp", layer={"name": "reading", "bins": 20_000},
        holdouts=[{"name": "global-2026"}]), headers=ADMIN)
    assert first.status_code == 201, first.text
    assert first.json()["row"]["layer"] == {"name": "reading", "range": [0, 20_000]}
    assert first.json()["row"]["holdouts"] == [{"name": "global-2026", "percent": 2.5}]
    # readers get the range and the percent inline
    [served] = client.get("/api/v1/experiments").json()
    assert served["layer"]["range"] == [0, 20_000] and served["holdouts"][0]["percent"] == 2.5

    second = client.post("/api/v1/experiments", json=experiment(
        "second-api-exp", layer={"name": "reading", "range": [30_000, 100_000]}), headers=ADMIN)
    assert second.status_code == 201
    full = client.post("/api/v1/experiments", json=experiment(
        "third-api-exp", layer={"name": "reading", "bins": 10_001}), headers=ADMIN)
    assert full.status_code == 409
    assert "largest free range is [20000, 30000) (10000 bins)" in full.json()["message"]

    shown = client.get("/api/v1/layers/reading").json()
    assert shown["occupancy"]["free"] == [[20_000, 30_000]]
    assert [(e["name"], e["range"], e["status"]) for e in shown["occupancy"]["experiments"]] == [
        ("layered-api-exp", [0, 20_000], "running"),
        ("second-api-exp", [30_000, 100_000], "running")]

    etag = client.get("/api/v1/experiments/layered-api-exp").headers["etag"]
    grown = client.patch("/api/v1/experiments/layered-api-exp", json={
        "layer": {"name": "reading", "bins": 30_000}}, headers={**ADMIN, "If-Match": etag})
    assert grown.status_code == 200 and grown.json()["row"]["layer"]["range"] == [0, 30_000]
    assert client.get("/api/v1/layers/reading").json()["occupancy"]["free"] == []

    etag = client.get("/api/v1/holdouts/global-2026").headers["etag"]
    locked = client.patch("/api/v1/holdouts/global-2026", json={"percent": 5},
                          headers={**ADMIN, "If-Match": etag})
    assert locked.status_code == 409 and "layered-api-exp" in locked.json()["message"]
    in_use = client.post("/api/v1/layers/reading/end", headers=ADMIN)
    assert in_use.status_code == 409
    assert "second-api-exp" in in_use.json()["message"]


@pytest.mark.parametrize("name", ["ünï-layer", "用户-layer"])
def test_layer_names_of_any_script_as_sl_v2_rows_allow(client: TestClient, name: str) -> None:
    created = client.post("/api/v1/layers", json={"name": name}, headers=ADMIN)
    assert created.status_code == 201, created.text
    shown = client.get(f"/api/v1/layers/{quote(name)}")
    assert shown.status_code == 200 and shown.json()["row"]["name"] == name
    used = client.post("/api/v1/experiments", headers=ADMIN, json=experiment(
        "unicode-layered", layer={"name": name, "bins": 25000}))
    assert used.status_code == 201, used.text
    assert used.json()["row"]["layer"] == {"name": name, "range": [0, 25000]}
    for bad in ("a layer", "-leading", "x" * 64, "semi;colon"):
        refused = client.post("/api/v1/layers", json={"name": bad}, headers=ADMIN)
        assert refused.status_code == 422 and refused.json()["field"] == "name", bad
