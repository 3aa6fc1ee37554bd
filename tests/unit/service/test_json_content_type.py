"""Every JSON response of the service says ``application/json; charset=utf-8``, exactly: what
Wikimedia's edge config fetcher requires of the config API, kept the same everywhere."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from splitlab.service.app import create_app
from splitlab.service.settings import Settings

JSON = "application/json; charset=utf-8"
TOKEN = "content-type-token"
ROW = {"name": "content-type-exp", "groups": ["control", "test"], "sample_rate": 0.5,
       "user_identifier_type": "edge-unique", "start": "2026-01-01T00:00:00Z",
       "end": "2099-01-01T00:00:00Z"}


def test_every_json_response_carries_the_charset(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, admin_token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(settings)) as client:
        responses = {
            "create": client.post("/api/v1/experiments", json=ROW, headers=auth),
            "health": client.get("/healthz"),
            "config": client.get("/api/v1/experiments"),
            "edge": client.get("/api/v1/experiments?authority=varnish&format=config"),
            "edge gzip": client.get("/api/v1/experiments?authority=varnish",
                                    headers={"Accept-Encoding": "gzip"}),
            "analytics": client.get("/api/v1/instruments?format=analytics"),
            "bad query": client.get("/api/v1/experiments?format=csv"),
            "show": client.get("/api/v1/experiments/content-type-exp"),
            "missing": client.get("/api/v1/experiments/no-such-experiment"),
            "history": client.get("/api/v1/experiments/content-type-exp/history"),
            "unauthorized": client.post("/api/v1/experiments", json=ROW),
            "openapi": client.get("/openapi.json"),
            "events empty": client.post("/v1/events", content=b""),
            "events invalid": client.post("/v1/events", json=[{"meta": {"stream": "nope"}}]),
            "keys": client.get("/.well-known/splitlab-keys.json"),
            "payload": client.post("/client/v1/payload",
                                   json={"identifiers": {"edge-unique": "reader"}}),
            "payload bad": client.post("/client/v1/payload", json={"identifiers": 1}),
            "ofrep bulk": client.post("/ofrep/v1/evaluate/flags",
                                      json={"context": {"targetingKey": "reader"}}),
            "ofrep one": client.post("/ofrep/v1/evaluate/flags/content-type-exp",
                                     json={"context": {"targetingKey": "reader"}}),
        }
    assert responses["create"].status_code == 201
    wrong = {what: r.headers.get("content-type") for what, r in responses.items()
             if r.headers.get("content-type") != JSON}
    assert wrong == {}
