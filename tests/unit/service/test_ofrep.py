"""OFREP endpoints and the keys/payload endpoints, through the ASGI app (Starlette TestClient)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import VECTORS
from splitlab.core.model import Experiment
from splitlab.sdk.signing import verify_envelope
from splitlab.service.app import client_components, create_app
from splitlab.service.client_access import StaticExperiments
from splitlab.service.ofrep import OfrepComponent
from splitlab.service.rate_limit import RateLimiter
from splitlab.service.settings import Settings

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
CASES = json.loads((VECTORS / "tk-v1.json").read_text())["cases"]


def experiment(name: str, **extra: object) -> Experiment:
    row: dict[str, object] = {"name": name, "groups": ["control", "treatment"],
                              "sample_rate": {"default": 0.5},
                              "user_identifier_type": "edge-unique"}
    return Experiment.from_config({**row, **extra})


SOURCE = StaticExperiments((
    experiment("client-button-exp"),
    experiment("server-only-exp"),
    experiment("ended-old-exp", end="2026-01-01T00:00:00Z"),
))


def app_client(tmp_path: Path, **settings: object) -> TestClient:
    config = Settings(data_dir=tmp_path, **settings)  # type: ignore[arg-type]
    parts = client_components(config, SOURCE)
    for part in parts:
        if isinstance(part, OfrepComponent):
            part.clock = lambda: NOW
    return TestClient(create_app(config, parts))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with app_client(tmp_path, client_experiments=frozenset({"client-button-exp"})) as test:
        yield test


def evaluate(client: TestClient, key: str, body: object, **headers: str) -> tuple[int, dict]:
    response = client.post(f"/ofrep/v1/evaluate/flags/{key}", content=json.dumps(body),
                           headers=headers)
    return response.status_code, response.json()


def test_single_flag_matches_the_vectors(tmp_path: Path) -> None:
    picked = [c for c in CASES if c["input"]["site"] is None and isinstance(
        c["input"]["identifier"], str) and c["input"]["identifier"]][:40]
    for case in picked:
        given, expected = case["input"], case["expected"]
        source = StaticExperiments((Experiment.from_config({
            "name": given["experiment"], "groups": given["groups"],
            "sample_rate": given["sample_rate"], "user_identifier_type": "session"}),))
        parts = client_components(Settings(data_dir=tmp_path), source)
        with TestClient(create_app(Settings(data_dir=tmp_path), parts)) as test:
            status, body = evaluate(test, given["experiment"],
                                    {"context": {"targetingKey": given["identifier"]}})
        assert status == 200
        if expected["in_sample"]:
            assert (body["value"], body["variant"], body["reason"]) == (
                expected["group"], expected["group"], "SPLIT"), case["id"]
            assert body["metadata"]["subject_id"] == expected["subject_id"]
            assert body["metadata"]["enrolled"] is True
        else:
            assert body["reason"] == "DEFAULT", case["id"]
            assert body["value"] == body["variant"] == given["groups"][0]
            assert body["metadata"] == {"enrolled": False, "reason": "not_sampled"}


def test_errors_follow_the_spec(client: TestClient) -> None:
    assert evaluate(client, "no-such-flag", {"context": {"targetingKey": "a"}}) == (
        404, {"key": "no-such-flag", "errorCode": "FLAG_NOT_FOUND",
              "errorDetails": "no experiment named 'no-such-flag'"})
    status, body = evaluate(client, "client-button-exp", {"context": {}})
    assert (status, body["errorCode"], body["key"]) == (400, "TARGETING_KEY_MISSING",
                                                        "client-button-exp")
    status, body = evaluate(client, "client-button-exp", {"context": {"targetingKey": 5}})
    assert (status, body["errorCode"]) == (400, "INVALID_CONTEXT")
    status, body = evaluate(client, "client-button-exp", {"context": []})
    assert (status, body["errorCode"]) == (400, "INVALID_CONTEXT")
    response = client.post("/ofrep/v1/evaluate/flags/client-button-exp", content=b"{nope")
    assert response.status_code == 400 and response.json()["errorCode"] == "PARSE_ERROR"
    status, body = evaluate(client, "ended-old-exp", {"context": {"targetingKey": "a"}})
    assert (status, body["reason"], body["value"]) == (200, "DISABLED", "control")


def test_bulk_lists_client_experiments_with_etag(client: TestClient) -> None:
    body = {"context": {"targetingKey": "reader-1"}}
    first = client.post("/ofrep/v1/evaluate/flags", json=body)
    assert first.status_code == 200
    flags = first.json()["flags"]
    assert [f["key"] for f in flags] == ["client-button-exp"]
    single = client.post("/ofrep/v1/evaluate/flags/client-button-exp", json=body).json()
    assert flags[0] == single
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = client.post("/ofrep/v1/evaluate/flags", json=body, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and again.content == b""
    other = client.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "x"}},
                        headers={"If-None-Match": etag})
    assert other.status_code == (304 if other.headers["etag"] == etag else 200)
    assert client.post("/ofrep/v1/evaluate/flags", json=body,
                       headers={"If-None-Match": 'W/"x", ' + etag}).status_code == 304
    missing = client.post("/ofrep/v1/evaluate/flags", json={"context": {}})
    assert missing.status_code == 400 and missing.json()["errorCode"] == "TARGETING_KEY_MISSING"


def test_api_key_401_then_403_then_ok(tmp_path: Path) -> None:
    with app_client(tmp_path, client_api_key="s3cret") as test:
        body = {"context": {"targetingKey": "a"}}
        assert evaluate(test, "client-button-exp", body)[0] == 401
        assert evaluate(test, "client-button-exp", body, authorization="Bearer nope")[0] == 403
        assert evaluate(test, "client-button-exp", body, authorization="Bearer s3cret")[0] == 200
        assert evaluate(test, "client-button-exp", body, **{"x-api-key": "s3cret"})[0] == 200
        bulk = test.post("/ofrep/v1/evaluate/flags", json=body)
        assert bulk.status_code == 401


def test_rate_limit_429_with_retry_after(tmp_path: Path) -> None:
    with app_client(tmp_path, ofrep_rate_limit=2.0) as test:
        body = {"context": {"targetingKey": "a"}}
        statuses = [test.post("/ofrep/v1/evaluate/flags", json=body) for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 200, 429]
        assert int(statuses[2].headers["retry-after"]) >= 1


def test_token_bucket_refills_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter(1.0, burst=2, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(1.0)
    assert limiter.acquire("b") == 0.0
    now[0] = 1.5
    assert limiter.acquire("a") == 0.0


def test_keys_and_signed_payload_endpoint(tmp_path: Path) -> None:
    with app_client(tmp_path, client_api_key="k") as test:
        keys = test.get("/.well-known/splitlab-keys.json")
        assert keys.status_code == 200 and keys.json()["keys"][0]["crv"] == "Ed25519"
        assert "max-age" in keys.headers["cache-control"]
        request = {"identifiers": {"edge-unique": "reader-1"}}
        assert test.post("/client/v1/payload", json=request).status_code == 401
        response = test.post("/client/v1/payload", json=request, headers={"x-api-key": "k"})
        assert response.status_code == 200
        payload = verify_envelope(response.json(), keys.json())
        assert set(payload["experiments"]) <= {"client-button-exp", "server-only-exp"}
        bad = test.post("/client/v1/payload", json={"identifiers": {"edge-unique": [1]}},
                        headers={"x-api-key": "k"})
        assert bad.status_code == 400 and "identifiers['edge-unique']" in bad.json()["message"]
        assert bad.json()["error"] == "bad_request"


def test_the_payload_endpoint_takes_the_attributes_the_server_knows(tmp_path: Path) -> None:
    condition = {"platform": "mobile", "viewport": {"$gte": 1000}}
    targeted = experiment("client-viewport-exp", algorithm="sl-v2", targeting=condition,
                          traffic_split={"default": {"control": 50, "treatment": 50}})
    mobile = experiment("client-mobile-exp", algorithm="sl-v2", targeting={"platform": "mobile"},
                        traffic_split={"default": {"control": 50, "treatment": 50}})
    config = Settings(data_dir=tmp_path)
    with TestClient(create_app(config, client_components(
            config, StaticExperiments((targeted, mobile))))) as test:
        keys = test.get("/.well-known/splitlab-keys.json").json()

        def payload(body: dict[str, object]) -> dict[str, Any]:
            response = test.post("/client/v1/payload", json=body)
            assert response.status_code == 200, response.text
            found: dict[str, Any] = verify_envelope(response.json(), keys)["experiments"]
            return found

        unit = {"edge-unique": "reader-1"}
        desktop = payload({"identifiers": unit, "site": "enwiki",
                           "attributes": {"platform": "desktop", "skin": "minerva"}})
        assert list(desktop) == ["client-viewport-exp"]  # client-mobile-exp decided: out
        assert desktop["client-viewport-exp"]["attributes"] == {"platform": "desktop"}
        unknown = payload({"identifiers": unit})
        assert {name: entry["attributes"] for name, entry in unknown.items()} == {
            "client-viewport-exp": {}, "client-mobile-exp": {}}
        bad = test.post("/client/v1/payload", json={"identifiers": unit, "attributes": [1]})
        assert bad.status_code == 400 and "'attributes'" in bad.json()["message"]


class BrokenSource:
    def experiments(self) -> list[Experiment]:
        raise OSError("registry unreachable at 10.0.0.7")


def test_internal_failures_are_general_and_say_nothing_internal(tmp_path: Path) -> None:
    config = Settings(data_dir=tmp_path)
    app = create_app(config, client_components(config, BrokenSource()))
    with TestClient(app, raise_server_exceptions=False) as test:
        body = {"context": {"targetingKey": "a"}}
        for path in ("/ofrep/v1/evaluate/flags/any-exp-name", "/ofrep/v1/evaluate/flags"):
            response = test.post(path, json=body)
            assert response.status_code == 500
            assert "10.0.0.7" not in response.text and "errorDetails" in response.json()
    from splitlab.core.model import SampleRate

    broken = Experiment("broken-groups-exp", (), SampleRate(1.0), "edge-unique")
    source = StaticExperiments((broken, experiment("client-button-exp")))
    with TestClient(create_app(config, client_components(config, source))) as test:
        flags = test.post("/ofrep/v1/evaluate/flags",
                          json={"context": {"targetingKey": "a"}}).json()["flags"]
        assert flags[0]["errorCode"] == "GENERAL" and flags[0]["key"] == "broken-groups-exp"
        assert flags[1]["key"] == "client-button-exp" and "errorCode" not in flags[1]
