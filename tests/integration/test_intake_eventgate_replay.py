"""A replay of EventGate's intake contract against a real ``splitlab serve`` (issue 10).

Every case is a request and the answer EventGate 1.8.4 gives, worked out from its source
(``routes/events.js``: statuses, reason phrases and bodies; ``app.js``: body-parser 1.19 with
``inflate`` for gzip/deflate and a 415 for other encodings, Express's non-strict routing that
serves ``/v1/events/``; ``lib/EventValidator.js``: AJV 6.12.6, ``allErrors``, "fast" formats;
``lib/error.js``: ``errorsText``). ``same`` cases must be answered exactly as EventGate does;
``differs`` cases are splitlab's deliberate differences (DESIGN.md and docs/intake.md), with
EventGate's answer noted. The reason phrase is compared with the ``X-Status-Message`` header:
uvicorn sends only standard reason phrases (docs/intake.md).

After the replay, the SQLite event log is read to check what each case stored: every case marks
its events with ``action_context = <case id>``.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.serve_helpers import free_port, server
from tests.unit.intake.conftest import web_event

EMPTY = "Request body was empty. Must provide JSON encoded events."


def ev(case: str, **extra: Any) -> dict[str, Any]:
    return web_event(action_context=case, **extra)


def bad(case: str) -> dict[str, Any]:
    return ev(case, agent={"client_platform": "commodore64", "client_platform_family": "x"})


def body(events: Any) -> bytes:
    return orjson.dumps(events)


@dataclass(frozen=True)
class Case:
    id: str
    content: bytes
    status: int
    reason: str | None  # EventGate's reason phrase (None: not EventGate's to define)
    stored: int = 0  # events this case must leave on the client streams
    headers: dict[str, str] = field(default_factory=dict)
    path: str = "/v1/events"
    hasty: bool = False
    invalid: int | None = None  # entries in the body's "invalid" list (None: no such body)
    same: bool = True  # False: a deliberate difference from EventGate (see eventgate)
    eventgate: str = ""


def surrogate_body(case: str) -> bytes:
    return body([ev(case), ev(case, page={"title": "PLACEHOLDER"})]).replace(
        b"PLACEHOLDER", b"cut emoji \\ud83d")


def with_uri(case: str, uri: str) -> dict[str, Any]:
    event = ev(case)
    event["meta"]["uri"] = uri
    return event


def with_id(case: str) -> dict[str, Any]:
    event = ev(case)
    event["meta"]["id"] = "0f6c2a7e-1d2e-4f00-8a00-00000000c0de"
    return event


CASES = [
    Case("all-accepted", body([ev("all-accepted")] * 3), 201,
         "All 3 out of 3 events were accepted.", stored=3),
    Case("one-object", body(ev("one-object")), 201, "All 1 out of 1 events were accepted.",
         stored=1),
    Case("beacon-text-plain", body([ev("beacon-text-plain")]), 201,
         "All 1 out of 1 events were accepted.", stored=1,
         headers={"content-type": "text/plain;charset=UTF-8"}),
    Case("mixed", body([ev("mixed"), ev("mixed"), bad("mixed")]), 207,
         "2 out of 3 events were accepted, but 1 failed (1 invalid and 0 errored).", stored=2,
         invalid=1),
    Case("all-invalid", body([bad("all-invalid"), bad("all-invalid")]), 400,
         "2 out of 2 events were invalid and not accepted.", invalid=2),
    Case("empty-body", b"", 400, EMPTY),
    Case("empty-array", b"[]", 400, EMPTY),
    Case("empty-object", b"{}", 400, EMPTY),
    Case("hasty", body([ev("hasty"), ev("hasty"), bad("hasty")]), 202,
         "3 events hastily received.", stored=2, hasty=True),
    Case("hasty-10001", body([ev("hasty-10001")] * 10_001), 202,
         "10001 events hastily received.", stored=10_001, hasty=True),
    Case("gzip", gzip.compress(body([ev("gzip"), ev("gzip")])), 201,
         "All 2 out of 2 events were accepted.", stored=2, headers={"content-encoding": "gzip"}),
    Case("deflate", zlib.compress(body([ev("deflate")])), 201,
         "All 1 out of 1 events were accepted.", stored=1,
         headers={"content-encoding": "deflate"}),
    Case("unknown-encoding", gzip.compress(body([ev("unknown-encoding")])), 415, None,
         headers={"content-encoding": "br"}),
    Case("gzip-header-plain-body", body([ev("gzip-header-plain-body")]), 400, None,
         headers={"content-encoding": "gzip"}),
    Case("trailing-slash", body([ev("trailing-slash")]), 201,
         "All 1 out of 1 events were accepted.", stored=1, path="/v1/events/"),
    Case("lone-surrogate", surrogate_body("lone-surrogate"), 201,
         "All 2 out of 2 events were accepted.", stored=2),
    Case("date-times", body([ev("date-times", dt="2025-05-01T12:00:00+0200"),
                             ev("date-times", dt="2025-05-01T12:00:00+02"),
                             ev("date-times", dt="2025-05-01 12:00:00Z")]), 201,
         "All 3 out of 3 events were accepted.", stored=3),
    Case("impossible-date", body([ev("impossible-date", dt="2025-02-30 12:00:00Z")]), 400,
         "1 out of 1 events were invalid and not accepted.", invalid=1, same=False,
         eventgate="201: AJV's fast date-time is a pattern and does not check the calendar"),
    Case("uri-reference", body([with_uri("uri-reference", "https://x.org/w?t=A|B&a[]=1"),
                                with_uri("uri-reference", "/wiki/A[1]|x")]), 201,
         "All 2 out of 2 events were accepted.", stored=2),
    Case("long-schema-segment", body([ev("long-schema-segment"), ev(
        "long-schema-segment", **{"$schema": "/" + "a" * 256 + "/1.0.0"})]), 207,
         "1 out of 2 events were accepted, but 1 failed (1 invalid and 0 errored).", stored=1,
         invalid=1, same=False,
         eventgate="207 with the event as errored (0 invalid and 1 errored): a schema that "
                   "cannot be loaded is an error there"),
    Case("unknown-stream", body([ev("unknown-stream"), web_event(
        "no.such.stream", action_context="unknown-stream")]), 207,
         "1 out of 2 events were accepted, but 1 failed (1 invalid and 0 errored).", stored=1,
         invalid=1, same=False, eventgate="201: EventGate 1.8.4 has no stream config"),
    Case("not-json", b"[{\"a\": ", 400, None, same=False,
         eventgate="an error from the JSON parser, not EventGate's route"),
    Case("other-content-type", body([ev("other-content-type")]), 415, None,
         headers={"content-type": "application/xml"}, same=False,
         eventgate="400 'Request body was empty...': body-parser skips other types"),
    Case("duplicate-meta-id", body([with_id("duplicate-meta-id")] * 2), 201,
         "All 2 out of 2 events were accepted.", stored=1, same=False,
         eventgate="201 and both produced: EventGate does not deduplicate"),
]


def stored_by_case(events_file: Path) -> tuple[Counter[str], dict[str, list[dict[str, Any]]]]:
    with sqlite3.connect(events_file) as db:
        rows = db.execute("SELECT stream, body FROM events").fetchall()
    counts: Counter[str] = Counter()
    events: dict[str, list[dict[str, Any]]] = {}
    for stream, raw in rows:
        event = json.loads(raw)
        if stream != "splitlab.error.validation":
            counts[event.get("action_context", "")] += 1
            events.setdefault(event.get("action_context", ""), []).append(event)
    return counts, events


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, httpx.Response], Path]:
    data = tmp_path_factory.mktemp("replay")
    port = free_port()
    env = {"SPLITLAB_EVENTS_MAX_BODY": str(8 * 1024 * 1024)}
    answers: dict[str, httpx.Response] = {}
    with (server(data, port, workers=1, env=env, log=data / "serve.log"),
          httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False,
                       timeout=60) as client):
        for case in CASES:
            headers = {"content-type": "application/json", **case.headers}
            answers[case.id] = client.post(
                case.path, content=case.content, headers=headers,
                params={"hasty": "true"} if case.hasty else None)
        deadline = time.monotonic() + 60  # hasty batches are stored after the answer
        expected = {c.id: c.stored for c in CASES}
        while time.monotonic() < deadline:
            counts, _ = stored_by_case(data / "events.sqlite")
            if all(counts[c] >= n for c, n in expected.items()):
                break
            time.sleep(0.2)
    return answers, data / "events.sqlite"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_replay_answers_as_eventgate(replay: tuple[dict[str, httpx.Response], Path],
                                     case: Case) -> None:
    answers, events_file = replay
    response = answers[case.id]
    assert response.status_code == case.status, response.text
    if case.reason is not None:
        assert response.headers["x-status-message"] == case.reason
    if case.status in (201, 202):
        assert response.content == b""
    elif case.invalid is not None:
        answer = response.json()
        assert len(answer["invalid"]) == case.invalid
        for entry in answer["invalid"]:
            assert entry["status"] == "invalid" and entry["event"]["action_context"] == case.id
            context = entry["context"]
            assert context["errors"] and context["message"]
            assert context["errorsText"] == ", ".join(
                f"'{e['dataPath']}' {e['message']}" for e in context["errors"])
    else:
        assert response.json()["message"]
    counts, _ = stored_by_case(events_file)
    assert counts[case.id] == case.stored


def test_replayed_events_are_stored_as_documented(
        replay: tuple[dict[str, httpx.Response], Path]) -> None:
    answers, events_file = replay
    _, events = stored_by_case(events_file)
    assert sorted(e["dt"] for e in events["date-times"]) == [
        "2025-05-01T10:00:00Z", "2025-05-01T10:00:00Z", "2025-05-01T12:00:00Z"]
    assert [e["page"]["title"] for e in events["lone-surrogate"] if "page" in e] == [
        "cut emoji \ufffd"]
    assert sorted(e["meta"]["uri"] for e in events["uri-reference"]) == [
        "/wiki/A[1]|x", "https://x.org/w?t=A|B&a[]=1"]
    [mixed] = answers["mixed"].json()["invalid"]
    assert {(e["keyword"], e["dataPath"]) for e in mixed["context"]["errors"]} == {
        ("enum", ".agent.client_platform"), ("enum", ".agent.client_platform_family")}
