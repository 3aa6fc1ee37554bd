"""Fuzzing POST /v1/events over bodies and headers: never a 5xx, nothing stored when rejected.

Bodies: random bytes and JSON, mutated events, deep nesting, and (issue 10) compressed bodies
under right, wrong and unknown ``Content-Encoding`` values (also cut short), lone surrogates in
strings and keys, and ``$schema`` values with path segments of 256+ characters.

Invariants per request, with an always-available in-memory sink:
- the status is one of 201, 207, 400, 413, 415 (no 5xx, no crash);
- events land on client streams only for accepted events (201: all, 207: "N out of M");
- a request refused as a whole (empty, not JSON, too large, wrong type) stores nothing at all;
- the X-Forwarded-For value is never stored.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from splitlab.intake.sinks import MemorySink
from splitlab.service.app import create_app
from splitlab.service.intake import IntakeComponent
from splitlab.service.settings import Settings
from tests.unit.intake.conftest import web_event

ERRORS = "splitlab.error.validation"
XFF = "192.0.2.201"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
FIELDS = ["$schema", "action", "agent", "meta", "dt", "experiment", "page", "http", "performer"]
odd_schemas = st.one_of(
    st.integers(1, 600).map(lambda n: "/" + "a" * n + "/1.0.0"),
    st.lists(st.integers(200, 300), min_size=1, max_size=20).map(
        lambda sizes: "/" + "/".join("s" * n for n in sizes) + "/1.0.0"),
    st.text(max_size=40).map(lambda t: "http://[" + t),
    st.text(max_size=300).map(lambda t: "https://h/jsonschema/" + t + "/1.0.0"),
    st.integers(250, 3000).map(lambda n: "/analytics/product_metrics/web/base/" + "9" * n
                               + ".0.0"),
)


@st.composite
def mutated_event(draw: st.DrawFn) -> Any:
    event = web_event(draw(st.sampled_from(
        ["product_metrics.web_base", "product_metrics.experiment_enrollment", "other", ERRORS])))
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()):
            event.pop(field, None)
        elif field == "$schema" and draw(st.booleans()):
            event[field] = draw(odd_schemas)
        else:
            event[field] = draw(json_values)
    return event


lone_surrogates = st.integers(0xD800, 0xDFFF).map(lambda u: f"\\u{u:04x}".encode())


@st.composite
def surrogate_body(draw: st.DrawFn) -> bytes:
    """A batch whose JSON text has lone surrogate escapes spliced into its strings and keys."""
    text = orjson.dumps(draw(st.lists(mutated_event(), min_size=1, max_size=4)))
    quotes = [i for i, byte in enumerate(text) if byte == ord('"')]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.sampled_from(quotes))
        text = text[:at] + draw(lone_surrogates) + text[at:]
        quotes = [i for i, byte in enumerate(text) if byte == ord('"')]
    return text


@st.composite
def odd_schema_batch(draw: st.DrawFn) -> bytes:
    """Valid events around one whose ``$schema`` is odd (long segments, not a URL, ...)."""
    batch = [web_event() for _ in range(draw(st.integers(0, 3)))]
    batch.insert(draw(st.integers(0, len(batch))), web_event(**{"$schema": draw(odd_schemas)}))
    return orjson.dumps(batch)


ENCODINGS = ["gzip", "deflate", "identity", "", "br", "GZIP", "gzip, deflate"]


@st.composite
def encoded_body(draw: st.DrawFn) -> tuple[bytes, str]:
    """A body compressed (or not) and labelled with a right, wrong or unknown encoding;
    sometimes cut short or with bytes after its end."""
    body = draw(st.one_of(bodies, surrogate_body(), odd_schema_batch()))
    compress = draw(st.sampled_from([gzip.compress, zlib.compress, lambda b: b]))
    data = compress(body)
    cut = draw(st.sampled_from([None, "short", "trailing"]))
    if cut == "short" and data:
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif cut == "trailing":
        data += draw(st.binary(min_size=1, max_size=8))
    return data, draw(st.sampled_from(ENCODINGS))


@st.composite
def deep_event(draw: st.DrawFn) -> bytes:
    """An event with a value nested around the JSON writer's 254-level limit."""
    deep: Any = draw(json_values)
    as_list = draw(st.booleans())
    for _ in range(draw(st.integers(200, 400))):
        deep = [deep] if as_list else {"a": deep}
    event = web_event()
    where = draw(st.sampled_from(["page", "http", "meta", "experiment", "action_context"]))
    if where == "meta":
        event["meta"]["x"] = deep
    else:
        event[where] = deep
    return json.dumps([web_event(), event]).encode()


bodies = st.one_of(
    deep_event(),
    st.binary(max_size=200),
    json_values.map(orjson.dumps),
    st.lists(mutated_event(), max_size=6).map(orjson.dumps),
    mutated_event().map(orjson.dumps),
)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
content_types = st.sampled_from(["application/json", "text/plain;charset=UTF-8", "", "text/html",
                                 "application/json; charset=utf-8"])


def check(sink: MemorySink, before: int, response: Any) -> None:
    """The invariants of the module docstring for one answer."""
    new = sink.events[before:]
    client_events = [e for e in new if e.stream != ERRORS]
    assert response.status_code in (201, 207, 400, 413, 415), response.text
    if response.status_code == 201:
        assert client_events and len(new) == len(client_events)
    elif response.status_code == 207:
        accepted = int(response.json()["message"].split(" out of ")[0])
        assert len({e.id for e in client_events}) <= accepted
    elif response.status_code == 400 and "invalid" in response.json():
        assert client_events == []
        assert len(new) == len(response.json()["invalid"])
    else:
        assert new == []
    for event in new:
        assert XFF.encode() not in event.body


def test_fuzz_bodies_and_headers(tmp_path: Path) -> None:
    sink = MemorySink()
    settings_ = Settings(data_dir=tmp_path, events_max_body=2048)
    component = IntakeComponent(settings_, CollectorRegistry(), sinks={"default": sink})
    with TestClient(create_app(settings_, [component])) as client:

        @settings(max_examples=300, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(body=bodies, content_type=content_types, request_id=header_text, agent=header_text)
        def run(body: bytes, content_type: str, request_id: str, agent: str) -> None:
            before = len(sink.events)
            headers = {"x-request-id": request_id, "user-agent": agent, "x-forwarded-for": XFF}
            if content_type:
                headers["content-type"] = content_type
            check(sink, before, client.post("/v1/events", content=body, headers=headers))

        run()


def test_fuzz_encodings_surrogates_and_odd_schemas(tmp_path: Path) -> None:
    sink = MemorySink()
    settings_ = Settings(data_dir=tmp_path, events_max_body=8192)
    component = IntakeComponent(settings_, CollectorRegistry(), sinks={"default": sink})
    with TestClient(create_app(settings_, [component])) as client:

        @settings(max_examples=300, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(sent=encoded_body(), slash=st.booleans())
        def run(sent: tuple[bytes, str], slash: bool) -> None:
            body, encoding = sent
            before = len(sink.events)
            headers = {"content-type": "application/json", "x-forwarded-for": XFF}
            if encoding:
                headers["content-encoding"] = encoding
            response = client.post("/v1/events/" if slash else "/v1/events", content=body,
                                   headers=headers)
            check(sink, before, response)
            if response.status_code in (201, 207):
                for event in sink.events[before:]:
                    event.body.decode("utf-8")  # stored as UTF-8: no surrogate survives

        run()
