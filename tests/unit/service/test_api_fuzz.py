"""Fuzzing every JSON endpoint of the whole service: never a 5xx, and every refusal in its
area's one error shape.

Bodies: deep nesting (around and far beyond every parser's limit, arrays and objects), lone
UTF-16 surrogates (escaped, and as raw bytes) in keys and values of otherwise valid requests,
arbitrary JSON, mutated valid requests and random bytes. Endpoints: the admin API (create, patch
with any If-Match, end; experiments naming a layer and a holdout), OFREP single and bulk, the
client payload, and the event intake.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .service_helpers import ADMIN, ROW, create_experiment, whole_service
from .test_intake_fuzz import json_values

NAME = ROW["name"]
ENDPOINTS = [
    ("POST", "/api/v1/experiments", "admin"),
    ("PATCH", f"/api/v1/experiments/{NAME}", "admin"),
    ("POST", f"/api/v1/experiments/{NAME}/end", "admin"),
    ("POST", "/api/v1/instruments", "admin"),
    ("POST", "/api/v1/experiments", "layered"),
    ("POST", "/api/v1/holdouts", "admin"),
    ("PATCH", "/api/v1/holdouts/fuzz-holdout", "admin"),
    ("POST", "/api/v1/layers/fuzz-layer/end", "admin"),
    ("POST", f"/ofrep/v1/evaluate/flags/{NAME}", "ofrep"),
    ("POST", "/ofrep/v1/evaluate/flags", "ofrep"),
    ("POST", "/client/v1/payload", "client"),
    ("POST", "/v1/events", "intake"),
]
VALID: dict[str, Any] = {
    "admin": {**ROW, "name": "fuzzed-exp-name"},
    "layered": {"name": "fuzzed-layered-exp", "groups": ["a", "b"], "algorithm": "sl-v2",
                "traffic_split": {"default": {"a": 1, "b": 1}}, "user_identifier_type": "mw-user",
                "layer": {"name": "fuzz-layer", "bins": 100},
                "holdouts": [{"name": "fuzz-holdout"}]},
    "ofrep": {"context": {"targetingKey": "reader-1", "site": "enwiki"}},
    "client": {"identifiers": {"edge-unique": "reader-1"}, "site": "enwiki"},
    "intake": [{"$schema": "/analytics/product_metrics/web/base/2.1.0",
                "meta": {"stream": "product_metrics.web_base"}, "action": "click",
                "agent": {"client_platform": "mediawiki_js"}}],
}
SENTINEL = "\u2603fuzz\u2603"
SURROGATES = [b'"\\ud83d"', b'"\\udc00"', b'"x\\ud800y"', b'"\\ud83d\\u0041"', b'"\xed\xa0\xbd"',
              b'"\\ud83d\\ude00"', b'"\\uDFFF"']



@st.composite
def deep(draw: st.DrawFn) -> bytes:
    """A value nested ``depth`` levels, alone or inside a valid request."""
    depth = draw(st.sampled_from([63, 64, 65, 200, 254, 255, 1000, 1023, 1024, 1025, 3000]))
    kinds = draw(st.lists(st.sampled_from([b"[", b"{"]), min_size=1, max_size=3))
    opened = [kinds[i % len(kinds)] for i in range(depth)]
    text = b"".join(b'{"k":' if k == b"{" else b"[" for k in opened) + b"0" + b"".join(
        b"}" if k == b"{" else b"]" for k in reversed(opened))
    area = draw(st.sampled_from(sorted(VALID)))
    if draw(st.booleans()):
        return text
    body = json.dumps(VALID[area]).encode()
    where = draw(st.sampled_from([b'"reader-1"', b'"enwiki"', b'"click"', b"1.0", b'"control"']))
    return body.replace(where, text, 1)


@st.composite
def with_surrogate(draw: st.DrawFn) -> bytes:
    """A valid request of some area with one string (a key or a value) made a lone surrogate."""
    value: Any = json.loads(json.dumps(VALID[draw(st.sampled_from(sorted(VALID)))]))
    node = value[0] if isinstance(value, list) else value
    path = [node]
    while True:
        current = path[-1]
        keys = [k for k, v in current.items() if isinstance(v, (dict, str))]
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        if isinstance(current[key], dict) and draw(st.booleans()):
            path.append(current[key])
            continue
        if draw(st.booleans()):
            current[SENTINEL] = current.pop(key)
        else:
            current[key] = SENTINEL
        break
    body = json.dumps(value, ensure_ascii=False).encode()
    return body.replace(json.dumps(SENTINEL, ensure_ascii=False).encode(),
                        draw(st.sampled_from(SURROGATES)))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    value = json.loads(json.dumps(VALID[draw(st.sampled_from(sorted(VALID)))]))
    node = value[0] if isinstance(value, list) else value
    for _ in range(draw(st.integers(1, 3))):
        node[draw(st.sampled_from([*node, "extra"]))] = draw(json_values)
    return orjson.dumps(value)


bodies = st.one_of(deep(), with_surrogate(), mutated(), json_values.map(orjson.dumps),
                   st.binary(max_size=64))
if_match = st.sampled_from([None, "*", " * ", '"x"', 'W/"x"', "", "*, *"])


def check_shape(area: str, status: int, body: Any) -> None:
    if area == "ofrep":
        assert "errorDetails" in body and set(body) <= {"key", "errorCode", "errorDetails"}
    elif area != "intake":  # admin and layered: the problem shape
        assert set(body) - {"field"} == {"error", "message"} and body["message"], body


def test_no_json_endpoint_answers_5xx(tmp_path: Path) -> None:
    with whole_service(tmp_path) as client:
        create_experiment(client)
        for path, row in (("/api/v1/layers", {"name": "fuzz-layer"}),
                          ("/api/v1/holdouts", {"name": "fuzz-holdout", "percent": 1})):
            assert client.post(path, json=row, headers=ADMIN).status_code == 201

        @settings(max_examples=400, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(endpoint=st.sampled_from(ENDPOINTS), body=bodies, match=if_match,
               content_type=st.sampled_from(["application/json", "text/plain;charset=UTF-8"]))
        def check(endpoint: tuple[str, str, str], body: bytes, match: str | None,
                  content_type: str) -> None:
            method, path, area = endpoint
            headers = {**ADMIN, "content-type": content_type}
            if match is not None:
                headers["if-match"] = match
            response = client.request(method, path, content=body, headers=headers)
            assert response.status_code < 500, (method, path, body[:200], response.text[:300])
            if response.status_code >= 400:
                check_shape(area, response.status_code, response.json())

        check()
