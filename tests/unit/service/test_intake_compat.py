"""Contract tests of issue 10's intake items: what an EventGate client sends must be kept.

Each test names its item. The expected values are worked out by hand from EventGate 1.8.4's
documented behaviour (routes/events.js, AJV 6.12.6 "fast" formats, body-parser 1.19) or computed
by an independent route (Python's gzip/zlib/json modules, datetime arithmetic).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.intake.conftest import web_event
from tests.unit.service.test_intake_http import Service, make_service

URL = "/v1/events"
ERRORS = "splitlab.error.validation"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    yield from make_service(tmp_path)


def body_of(events: Any) -> bytes:
    return json.dumps(events).encode()


# --- item 1: Content-Encoding ---------------------------------------------------------------

@pytest.mark.parametrize("encoding, compress", [
    ("gzip", gzip.compress),
    ("GZIP", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some clients send
    ("identity", lambda data: data),
])
def test_compressed_bodies_are_inflated(service: Service, encoding: str, compress: Any) -> None:
    events = [web_event(), web_event(action_context="ünïcode")]
    response = service.post(compress(body_of(events)), headers={"content-encoding": encoding})
    assert response.status_code == 201, response.text
    assert [e["action_context"] for e in service.stored()[1:]] == ["ünïcode"]


def test_gzip_members_in_a_row_are_one_body(service: Service) -> None:
    text = body_of([web_event(), web_event()])
    half = len(text) // 2
    body = gzip.compress(text[:half]) + gzip.compress(text[half:])
    response = service.post(body, headers={"content-encoding": "gzip"})
    assert response.status_code == 201, response.text
    assert len(service.stored()) == 2


def test_the_size_limit_applies_after_inflating(tmp_path: Path) -> None:
    for service in make_service(tmp_path, events_max_body=10_000):
        big = body_of([web_event(action_context="x" * 12_000)])
        squeezed = gzip.compress(big)
        assert len(squeezed) < 1000
        response = service.post(squeezed, headers={"content-encoding": "gzip"})
        assert response.status_code == 413
        assert "10000 bytes once inflated" in response.json()["message"]
        bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")  # 50 MB of JSON in ~50 KB
        response = service.post(bomb, headers={"content-encoding": "gzip"})
        assert response.status_code == 413
        assert service.sink.events == []


@pytest.mark.parametrize("encoding", ["br", "compress", "gzip, br", "x-unknown"])
def test_unknown_encodings_are_415(service: Service, encoding: str) -> None:
    response = service.post(gzip.compress(body_of([web_event()])),
                            headers={"content-encoding": encoding})
    assert response.status_code == 415
    assert "Content-Encoding" in response.json()["message"]
    assert service.sink.events == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_header_on_a_plain_body_is_400_not_read_as_plain(
        service: Service, encoding: str) -> None:
    response = service.post(body_of([web_event()]), headers={"content-encoding": encoding})
    assert response.status_code == 400
    assert f"not valid {encoding} data" in response.json()["message"]
    assert service.sink.events == []


def test_a_cut_gzip_body_is_400(service: Service) -> None:
    whole = gzip.compress(body_of([web_event()]))
    for cut in (whole[:1], whole[:10], whole[:-4], whole + b"trailing"):
        response = service.post(cut, headers={"content-encoding": "gzip"})
        assert response.status_code == 400, cut
        assert "not valid gzip data" in response.json()["message"]
    assert service.sink.events == []


# --- item 2: lone surrogates -----------------------------------------------------------------

def replaced(value: Any) -> Any:
    """The oracle: Python's json keeps lone surrogates; UTF-16 with 'replace' turns each into
    U+FFFD and keeps pairs."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [replaced(v) for v in value]
    if isinstance(value, dict):
        return {replaced(k): replaced(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("escaped", [
    r"cut emoji \ud83d", r"\ude00 low first", r"\ud83d\ud83d\ude00 two highs",
    r"pair \ud83d\ude00 kept", r"literal \\ud83d text", r"\\\ud83d odd backslashes"])
def test_lone_surrogates_are_stored_as_replacement_characters(service: Service,
                                                              escaped: str) -> None:
    text = body_of([web_event(), web_event(action_context="PLACEHOLDER")]).decode()
    text = text.replace("PLACEHOLDER", escaped)
    response = service.post(text.encode())
    assert response.status_code == 201, response.text
    expected = replaced(json.loads(text))[1]["action_context"]
    assert service.stored()[1]["action_context"] == expected
    assert "\ufffd" in expected or "\\" in expected or "😀" in expected


def test_a_surrogate_in_a_key_or_an_invalid_event_keeps_the_batch(service: Service) -> None:
    text = body_of([web_event(), {"meta": {"stream": "product_metrics.web_base"}, "K": 1}])
    response = service.post(text.replace(b'"K"', b'"\\udead"'))
    assert response.status_code == 207
    assert response.json()["invalid"][0]["event"]["\ufffd"] == 1
    assert len(service.stored()) == 1 and len(service.stored(ERRORS)) == 1


def test_bytes_that_are_not_utf8_in_a_string_become_replacement_characters(
        service: Service) -> None:
    body = body_of([web_event(action_context="PLACEHOLDER")])
    sent = b"caf\xe9 \xed\xa0\xbd"  # a Latin-1 byte, a surrogate in UTF-8 (CESU-8)
    response = service.post(body.replace(b"PLACEHOLDER", sent))
    assert response.status_code == 201, response.text
    assert service.stored()[0]["action_context"] == sent.decode("utf-8", "replace")


# --- item 3: hasty batches larger than the queue ---------------------------------------------

def test_a_hasty_batch_of_more_than_10000_events_is_taken_on_an_idle_server(
        tmp_path: Path) -> None:
    for service in make_service(tmp_path, events_max_body=8 * 1024 * 1024):
        assert service.component.settings.events_hasty_queue == 10_000  # the default
        batch = [web_event() for _ in range(10_001)]
        response = service.post(batch, params={"hasty": "true"})
        assert response.status_code == 202
        assert response.headers["x-status-message"] == "10001 events hastily received."
        assert len(service.stored()) == 10_001
        assert service.post([web_event()], params={"hasty": "true"}).status_code == 202


# --- item 4: date-time forms EventGate accepts ----------------------------------------------

@pytest.mark.parametrize("sent, stored", [
    ("2025-05-01T12:00:00+0200", "2025-05-01T10:00:00Z"),
    ("2025-05-01T12:00:00+02", "2025-05-01T10:00:00Z"),
    ("2025-05-01 12:00:00Z", "2025-05-01T12:00:00Z"),
    ("2025-05-01 12:00:00.123456+00:00", "2025-05-01T12:00:00.123456Z"),
    ("2025-05-01T01:30:00.5-0330", "2025-05-01T05:00:00.5Z"),
    ("2025-01-01 00:30:00+01", "2024-12-31T23:30:00Z"),
    ("2016-12-31 23:59:60Z", "2016-12-31T23:59:60Z"),
    ("2025-05-01T12:00:00+02:00", "2025-05-01T12:00:00+02:00"),  # RFC 3339: kept as sent
])
def test_eventgate_date_times_are_accepted_and_stored_as_rfc3339_utc(
        service: Service, sent: str, stored: str) -> None:
    event = web_event(dt=sent, performer={"registration_dt": sent})
    response = service.post([event])
    assert response.status_code == 201, response.text
    [kept] = service.stored()
    assert kept["dt"] == stored and kept["performer"]["registration_dt"] == stored
    assert event["dt"] == sent  # the client's object is not changed


@pytest.mark.parametrize("sent", [
    "2025-02-30 12:00:00Z", "2025-13-01T12:00:00+02", "2025-05-01 24:00:00Z",
    "2025-05-01T12:60:00+0200", "2025-05-01T12:00:00+2400", "2025-05-01T12:00:00+0260",
    "2025-05-01 21:59:60Z", "2025-05-01T23:59:60+0100", "2025-05-01_12:00:00Z",
    "2025-05-01T12:00:00", "2025-05-01T12:00Z", "2025-5-01T12:00:00Z", "0000-01-01 00:00:00Z",
    "2025-05-01T12:00:00+2", "2025-05-01T12:00:00+020", "２０２５-05-01T12:00:00Z",
])
def test_impossible_or_unknown_date_times_stay_invalid(service: Service, sent: str) -> None:
    response = service.post([web_event(dt=sent)])
    assert response.status_code == 400, sent
    [error] = response.json()["invalid"][0]["context"]["errors"]
    assert error["keyword"] == "format" and error["dataPath"] == ".dt"
    assert error["message"] == 'should match format "date-time"'


# --- item 5: uri-reference -------------------------------------------------------------------

@pytest.mark.parametrize("uri", [
    "https://en.wikipedia.org/w/index.php?title=A|B", "https://x.org/w?a[]=1&a[]=2",
    "https://x.org/wiki/{braces}^`", "/relative/path?q=|", "//host/a[0]", "#fragment|x", "",
])
def test_uri_references_browsers_leave_in_location_href_are_accepted(
        service: Service, uri: str) -> None:
    event = web_event()
    event["meta"]["uri"] = uri
    assert service.post([event]).status_code == 201
    assert service.stored()[0]["meta"]["uri"] == uri


@pytest.mark.parametrize("uri", ["https://x.org/a b", "\\\\server\\share", "/a\tb", "a#b\\c"])
def test_uri_references_ajv_refuses_stay_invalid(service: Service, uri: str) -> None:
    event = web_event()
    event["meta"]["uri"] = uri
    response = service.post([event])
    assert response.status_code == 400
    [error] = response.json()["invalid"][0]["context"]["errors"]
    assert error["keyword"] == "format" and error["dataPath"] == ".meta.uri"


# --- item 6: what clients read ---------------------------------------------------------------

def test_reason_phrases_are_eventgates_texts(service: Service) -> None:
    ok, bad = web_event(), web_event(agent={"client_platform": "commodore64"})
    assert service.post([ok, ok, ok]).headers["x-status-message"] == (
        "All 3 out of 3 events were accepted.")
    assert service.post([ok, ok, bad]).headers["x-status-message"] == (
        "2 out of 3 events were accepted, but 1 failed (1 invalid and 0 errored).")
    assert service.post([bad, bad]).headers["x-status-message"] == (
        "2 out of 2 events were invalid and not accepted.")
    for empty in (b"", b"[]", b"{}"):
        response = service.post(empty)
        assert response.status_code == 400
        assert response.headers["x-status-message"] == (
            "Request body was empty. Must provide JSON encoded events.")
    service.sink.available = False
    response = service.post([ok, bad])
    assert response.status_code == 500
    assert response.headers["x-status-message"] == (
        "2 out of 2 events had failures and were not accepted. (1 invalid and 1 errored).")
    response = service.post([ok, ok])
    assert response.headers["x-status-message"] == (
        "2 out of 2 events had failures and were not accepted. (0 invalid and 2 errored).")


def test_invalid_events_list_every_violation_in_ajvs_shape(service: Service) -> None:
    bad = web_event(agent={"client_platform": "commodore64", "extra": 1, "other": 2},
                    dt="yesterday")
    del bad["action"]
    response = service.post([bad])
    assert response.status_code == 400
    [entry] = response.json()["invalid"]
    context = entry["context"]
    assert "action" in context["message"]  # splitlab's own message (the first) stays
    errors = sorted(context["errors"], key=lambda e: (e["dataPath"], e["keyword"],
                                                      str(e["params"])))
    enum = ["mediawiki_php", "mediawiki_js", "kaios", "android", "ios"]
    assert errors == [
        {"keyword": "required", "dataPath": "", "instancePath": "", "schemaPath": "#/required",
         "params": {"missingProperty": "action"},
         "message": "should have required property 'action'"},
        {"keyword": "additionalProperties", "dataPath": ".agent", "instancePath": "/agent",
         "schemaPath": "#/properties/agent/additionalProperties",
         "params": {"additionalProperty": "extra"},
         "message": "should NOT have additional properties"},
        {"keyword": "additionalProperties", "dataPath": ".agent", "instancePath": "/agent",
         "schemaPath": "#/properties/agent/additionalProperties",
         "params": {"additionalProperty": "other"},
         "message": "should NOT have additional properties"},
        {"keyword": "enum", "dataPath": ".agent.client_platform",
         "instancePath": "/agent/client_platform",
         "schemaPath": "#/properties/agent/properties/client_platform/enum",
         "params": {"allowedValues": enum},
         "message": "should be equal to one of the allowed values"},
        {"keyword": "format", "dataPath": ".dt", "instancePath": "/dt",
         "schemaPath": "#/properties/dt/format", "params": {"format": "date-time"},
         "message": 'should match format "date-time"'},
    ]
    assert sorted(context["errorsText"].split(", ")) == sorted(
        f"'{e['dataPath']}' {e['message']}" for e in errors)


def test_checks_before_the_schema_also_carry_errors(service: Service) -> None:
    cases = [
        (42, "type", "", {"type": "object"}),
        ({"$schema": "x"}, "required", "", {"missingProperty": "meta"}),
        ({"meta": []}, "type", ".meta", {"type": "object"}),
        ({"meta": {}}, "required", ".meta", {"missingProperty": "stream"}),
        ({"meta": {"stream": 7}}, "type", ".meta.stream", {"type": "string"}),
        (web_event("no.such.stream"), "stream", ".meta.stream", {"stream": "no.such.stream"}),
        (web_event(**{"$schema": "/error/2.1.0"}), "stream", ".$schema", None),
        (web_event(**{"$schema": "/nope/1.0.0"}), "schema", ".$schema", None),
    ]
    response = service.post([case[0] for case in cases])
    assert response.status_code == 400
    for entry, (_, keyword, path, params) in zip(response.json()["invalid"], cases,
                                                 strict=True):
        [error] = entry["context"]["errors"]
        assert (error["keyword"], error["dataPath"]) == (keyword, path), entry
        assert params is None or error["params"] == params
        assert entry["context"]["errorsText"] == f"'{path}' {error['message']}"


def test_a_trailing_slash_is_served_not_redirected(service: Service) -> None:
    response = service.client.post(URL + "/", content=body_of([web_event()]),
                                   follow_redirects=False)
    assert response.status_code == 201
    assert len(service.stored()) == 1
    preflight = service.client.options(URL + "/", follow_redirects=False)
    assert preflight.status_code == 403  # no origin configured: refused, but not redirected


# --- item 7: odd $schema values ----------------------------------------------------------------

@pytest.mark.parametrize("schema", [
    "/" + "a" * 256 + "/1.0.0",
    "/" + "/".join(["b" * 255] * 20) + "/1.0.0",
    "/analytics/" + "c" * 5000 + "/1.0.0",
    "http://[::1/analytics/x/1.0.0",
    "https://schema.example/jsonschema/" + "d" * 300 + "/1.0.0",
    "/analytics/product_metrics/web/base/" + "9" * 300 + ".0.0",
    "/a/1.0.0\x00", "/../../etc/passwd/1.0.0", "/a/1.0.0/../1.0.0", 7, None, [], {"$ref": "#"},
])
def test_odd_schemas_are_invalid_events_and_the_batch_is_kept(service: Service,
                                                              schema: Any) -> None:
    odd = web_event(**{"$schema": schema})
    response = service.post([web_event(), odd, web_event()])
    assert response.status_code == 207, response.text
    [entry] = response.json()["invalid"]
    assert entry["context"]["errors"][0]["dataPath"] in (".$schema", "")
    assert len(service.stored()) == 2 and len(service.stored(ERRORS)) == 1
