"""Bad input on the JSON endpoints is a 4xx saying what was wrong, in one body shape per area
(the problem shape; OFREP's own shape under /ofrep/), and never a 5xx.

Each case here answered a 5xx or the wrong shape before errors were mapped in one place
(issue 10, items 8, 9 and 17).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from splitlab.sdk.signing import rotate_signing_keys
from splitlab.service.api_support import MAX_JSON_DEPTH

from .service_helpers import ADMIN, ROW, create_experiment, whole_service

OFREP_SINGLE = "/ofrep/v1/evaluate/flags/client-button-exp"
OFREP_BULK = "/ofrep/v1/evaluate/flags"
PAYLOAD = "/client/v1/payload"
LONE_SURROGATE = b'{"context": {"targetingKey": "\\ud83d"}}'


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TestClient]:
    with whole_service(tmp_path) as client:
        create_experiment(client)
        yield client


def nested(depth: int, opener: bytes = b"[") -> bytes:
    closer = b"]" if opener == b"[" else b"}"
    inner = b'{"a":' if opener == b"{" else opener
    return inner * depth + b"1" + closer * depth


@pytest.mark.parametrize("depth", [1000, 5000])
@pytest.mark.parametrize("opener", [b"[", b"{"])
def test_deep_nesting_is_a_400_on_every_json_endpoint(service: TestClient, depth: int,
                                                      opener: bytes) -> None:
    body = nested(depth, opener)
    for path in (OFREP_SINGLE, OFREP_BULK):
        response = service.post(path, content=body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["errorCode"] == "PARSE_ERROR"
        assert f"deeper than {MAX_JSON_DEPTH}" in response.json()["errorDetails"]
    for method, path in (("POST", PAYLOAD), ("POST", "/api/v1/experiments"),
                         ("PATCH", "/api/v1/experiments/client-button-exp")):
        response = service.request(method, path, content=body, headers={**ADMIN, "if-match": "x"})
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"] == "bad_request"
        assert f"deeper than {MAX_JSON_DEPTH}" in response.json()["message"]


def test_nesting_deeper_than_the_limit_anywhere_in_the_body_is_refused(
        service: TestClient) -> None:
    deep = b'{"context": {"targetingKey": "a", "extra": ' + nested(100) + b"}}"
    response = service.post(OFREP_SINGLE, content=deep)
    assert response.status_code == 400 and response.json()["key"] == "client-button-exp"
    assert f"deeper than {MAX_JSON_DEPTH}" in response.json()["errorDetails"]
    shallow = b'{"context": {"targetingKey": "a", "extra": ' + nested(MAX_JSON_DEPTH - 2) + b"}}"
    assert service.post(OFREP_SINGLE, content=shallow).status_code == 200


def test_a_lone_surrogate_in_the_targeting_key_is_invalid_context_and_one_log_line(
        service: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(5):  # several experiments would each have logged a traceback before
        create_experiment(service, {**ROW, "name": f"client-more-exp-{_}"})
    caplog.clear()
    with caplog.at_level(logging.INFO):
        single = service.post(OFREP_SINGLE, content=LONE_SURROGATE)
        bulk = service.post(OFREP_BULK, content=LONE_SURROGATE)
    assert single.status_code == 400
    assert single.json()["errorCode"] == "INVALID_CONTEXT"
    assert single.json()["key"] == "client-button-exp"
    assert "surrogate" in single.json()["errorDetails"]
    assert bulk.status_code == 400 and bulk.json()["errorCode"] == "INVALID_CONTEXT"
    assert "key" not in bulk.json()
    assert not [r for r in caplog.records if r.exc_info], "no traceback for bad input"


@pytest.mark.parametrize("body", [
    b'{"identifiers": {"edge-unique": "\\udc00"}}',
    b'{"identifiers": {"edge-unique": "a"}, "site": "\\ud800x"}',
    b'{"identifiers": {"edge-unique": "\xed\xa0\xbd"}}',
])
def test_a_lone_surrogate_in_a_client_payload_request_is_a_400(service: TestClient,
                                                               body: bytes) -> None:
    response = service.post(PAYLOAD, content=body)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_text", "message": response.json()["message"]}
    assert "not valid Unicode" in response.json()["message"]


def test_one_problem_shape_outside_ofrep(service: TestClient) -> None:
    payload = service.post(PAYLOAD, json={"identifiers": {}})
    admin = service.post("/api/v1/experiments", json={**ROW, "groups": 5}, headers=ADMIN)
    unknown = service.get("/no/such/route")
    wrong_method = service.delete("/api/v1/experiments")
    for response, status in ((payload, 400), (admin, 422), (unknown, 404),
                             (wrong_method, 405)):
        assert response.status_code == status
        body = response.json()
        assert set(body) - {"field"} == {"error", "message"}, body
        assert isinstance(body["error"], str) and body["message"]
    assert "identifiers" in payload.json()["message"]
    assert "GET" in wrong_method.headers["allow"]


def test_ofrep_auth_and_rate_limit_errors_keep_the_ofrep_shape(tmp_path: Path) -> None:
    with whole_service(tmp_path, client_api_key="k", ofrep_rate_limit=1.0) as client:
        body = {"context": {"targetingKey": "a"}}
        missing = client.post(OFREP_BULK, json=body)
        wrong = client.post(OFREP_BULK, json=body, headers={"x-api-key": "nope"})
        assert (missing.status_code, wrong.status_code) == (401, 403)
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert set(missing.json()) == set(wrong.json()) == {"errorDetails"}
        statuses = [client.post(OFREP_BULK, json=body, headers={"x-api-key": "k"})
                    for _ in range(3)]
        assert statuses[-1].status_code == 429
        assert int(statuses[-1].headers["retry-after"]) >= 1
        assert set(statuses[-1].json()) == {"errorDetails"}
        payload = client.post(PAYLOAD, json={"identifiers": {"edge-unique": "a"}})
        assert payload.status_code == 401 and set(payload.json()) == {"error", "message"}


def test_if_match_star_on_patch_is_refused_with_428_and_changes_nothing(
        service: TestClient) -> None:
    etag = service.get("/api/v1/experiments/client-button-exp").headers["etag"]
    response = service.patch("/api/v1/experiments/client-button-exp",
                             json={"sample_rate": {"default": 0.5}},
                             headers={**ADMIN, "if-match": "*"})
    assert response.status_code == 428
    assert response.json()["error"] == "precondition_required"
    assert "'*'" in response.json()["message"] and "ETag" in response.json()["message"]
    after = service.get("/api/v1/experiments/client-button-exp")
    assert after.headers["etag"] == etag and after.json()["revision"] == 1
    ok = service.patch("/api/v1/experiments/client-button-exp",
                       json={"sample_rate": {"default": 0.5}},
                       headers={**ADMIN, "if-match": etag})
    assert ok.status_code == 200 and ok.json()["revision"] == 2


def test_the_service_follows_a_key_rotation_at_its_next_request(tmp_path: Path) -> None:
    with whole_service(tmp_path) as client:
        create_experiment(client)
        before = client.get("/.well-known/splitlab-keys.json").json()
        assert len(before["keys"]) == 2
        rotate_signing_keys(tmp_path)
        after = client.get("/.well-known/splitlab-keys.json").json()
        envelope = client.post(PAYLOAD, json={"identifiers": {"edge-unique": "a"}}).json()
    assert envelope["kid"] == before["keys"][1]["kid"] == after["keys"][0]["kid"]
    assert before["keys"][0]["kid"] in [k["kid"] for k in after["keys"]]


def test_every_error_of_the_tree_has_its_own_status() -> None:
    """A class added to the tree without a row in the one mapping would be a silent 500."""
    import inspect

    from splitlab import errors
    from splitlab.service.problems import status_of

    server_side = {errors.SinkError: 503, errors.UnavailableError: 503, errors.RemoteError: 502,
                   errors.SplitlabError: 500}
    for _, kind in inspect.getmembers(errors, inspect.isclass):
        if issubclass(kind, errors.SplitlabError):
            status = status_of(kind.__new__(kind))
            assert status == server_side.get(kind, status) and (
                status < 500 or kind in server_side), (kind.__name__, status)
