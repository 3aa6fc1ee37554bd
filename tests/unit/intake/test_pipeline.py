"""The pipeline without HTTP: enrichment, privacy, statuses and error events."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from splitlab.intake.pipeline import EventStatus, Pipeline, RequestContext, TimeOrderedIds
from splitlab.intake.schemas import SchemaRepository
from splitlab.intake.sinks import MemorySink
from splitlab.intake.streams import catalog_from_document, default_catalog
from tests.unit.intake.conftest import WEB_13, web_event

CONTEXT = RequestContext(dt="2026-11-22T01:02:03.456Z", request_id="req-1", user_agent="UA/1.0")
WEB = "analytics/product_metrics/web/base"


def run(pipeline: Pipeline, events: list[Any], context: RequestContext = CONTEXT) -> list[
        EventStatus]:
    return asyncio.run(pipeline.process(events, context))


def make(sink: MemorySink | None = None, **kwargs: Any) -> tuple[Pipeline, MemorySink]:
    sink = sink or MemorySink()
    return Pipeline(SchemaRepository(), default_catalog(), {"default": sink}, **kwargs), sink


def stored(sink: MemorySink, stream: str) -> list[dict[str, Any]]:
    return [orjson.loads(e.body) for e in sink.events if e.stream == stream]


def test_enrichment_sets_receive_time_id_and_request_id_but_no_user_agent() -> None:
    pipeline, sink = make(new_ids=lambda count: ["fixed-id"] * count)
    headers = {"user-agent": "Body/UA", "X-Forwarded-For": "1.2.3.4", "accept-language": "en"}
    event = web_event(http={"request_headers": headers, "client_ip": "1.2.3.4"})
    original = copy.deepcopy(event)
    statuses = run(pipeline, [event])
    assert [s.status for s in statuses] == ["success"]
    [body] = stored(sink, "product_metrics.web_base")
    assert body["meta"]["dt"] == CONTEXT.dt
    assert body["meta"]["id"] == "fixed-id"
    assert body["meta"]["request_id"] == "req-1"
    assert body["http"] == {"request_headers": {"accept-language": "en"}}
    assert b"UA/1.0" not in sink.events[0].body and b"1.2.3.4" not in sink.events[0].body
    assert event == original, "the client's event object is not mutated"


def test_client_meta_id_is_kept_and_duplicates_are_stored_once() -> None:
    pipeline, sink = make()
    event = web_event()
    event["meta"]["id"] = "7a0e8f5c-0000-4000-8000-000000000001"
    statuses = run(pipeline, [event, event])
    assert [s.status for s in statuses] == ["success", "success"]
    run(pipeline, [event])
    assert [e.id for e in sink.events] == ["7a0e8f5c-0000-4000-8000-000000000001"]


def test_empty_or_null_meta_id_gets_a_fresh_id() -> None:
    pipeline, sink = make()
    events = [web_event(), web_event()]
    events[0]["meta"]["id"] = ""
    events[1]["meta"]["id"] = None
    assert [s.status for s in run(pipeline, events)] == ["success", "success"]
    ids = [e.id for e in sink.events]
    assert len(set(ids)) == 2 and all(len(i) == 36 for i in ids)


def test_user_agent_kept_only_where_the_stream_allows() -> None:
    catalog = catalog_from_document({"streams": {
        "splitlab.error.validation": {"schema_title": "error"},
        "ua.kept": {"schema_title": WEB, "keep_user_agent": True, "enrich_headers": False}}})
    sink = MemorySink()
    pipeline = Pipeline(SchemaRepository(), catalog, {"default": sink})
    run(pipeline, [web_event("ua.kept", http={"request_headers": {"x-client-ip": "9.9.9.9"}})])
    [body] = stored(sink, "ua.kept")
    assert body["http"]["request_headers"] == {"user-agent": "UA/1.0"}
    assert "request_id" not in body["meta"]


def test_mixed_batch_statuses_and_error_events() -> None:
    pipeline, sink = make()
    wrong_schema = web_event(**{"$schema": "/error/2.1.0"})
    unknown_version = web_event(**{"$schema": f"/{WEB}/2.0.0"})
    batch = [web_event(), {"meta": {"stream": "nope"}}, web_event(action=5), wrong_schema,
             unknown_version, "text", web_event("product_metrics.experiment_enrollment")]
    statuses = run(pipeline, batch)
    assert [s.status for s in statuses] == [
        "success", "invalid", "invalid", "invalid", "invalid", "invalid", "success"]
    messages = [s.context["message"] for s in statuses if s.context]
    assert "not configured" in messages[0]
    assert messages[1].startswith("action: 5 is not of type")
    assert "not allowed on stream" in messages[2]
    assert "schema not found" in messages[3]
    assert "JSON object" in messages[4]
    assert statuses[1].event == {"meta": {"stream": "nope"}}
    assert statuses[1].stream == "" and statuses[2].stream == "product_metrics.web_base"
    errors = stored(sink, "splitlab.error.validation")
    assert len(errors) == 5
    schema = SchemaRepository().get("/error/2.1.0")
    for error, message in zip(errors, messages, strict=True):
        schema.validate(error)
        assert error["message"] == message
        assert error["emitter_id"] == "splitlab"
    assert json.loads(errors[0]["raw_event"]) == {"meta": {"stream": "nope"}}
    assert errors[0]["errored_stream_name"] == "nope"
    assert errors[3]["errored_schema_uri"] == f"/{WEB}/2.0.0"


def test_a_remembered_stream_and_schema_pair_answers_as_a_first_check_does() -> None:
    """The pipeline remembers (stream, $schema) pairs it accepted; every refusal, and every
    status, must be the same for a warm pipeline as for a fresh one."""
    error = "splitlab.error.validation"
    batch = [web_event(), web_event(action=5), web_event(**{"$schema": "/error/2.1.0"}),
             {**web_event(), "meta": {"stream": error}}, web_event(meta="text"),
             web_event(meta={"stream": ["product_metrics.web_base"]}),
             web_event(**{"$schema": ["x"]}), [web_event()], web_event()]

    def outcome(pipeline: Pipeline, events: list[Any]) -> list[tuple[str, Any]]:
        return [(s.status, s.context and s.context["message"]) for s in run(pipeline, events)]

    fresh = [found for event in batch for found in outcome(make()[0], [event])]
    warm, _ = make()
    outcome(warm, batch)
    assert outcome(warm, batch) == fresh
    assert len(warm._routes) == 1
    assert [status for status, _ in fresh] == [
        "success", "invalid", "invalid", "invalid", "invalid", "invalid", "invalid", "invalid",
        "success"]


def test_clients_cannot_post_to_the_error_stream() -> None:
    pipeline, _sink = make()
    statuses = run(pipeline, [{"$schema": "/error/2.1.0", "meta": {"stream":
                                                                    "splitlab.error.validation"}}])
    assert statuses[0].status == "invalid"


def test_sink_failure_is_an_error_status_with_no_internal_detail() -> None:
    sink = MemorySink()
    sink.available = False
    pipeline, _ = make(sink)
    failures: list[str] = []
    pipeline.on_sink_error = failures.append
    event = web_event()
    statuses = run(pipeline, [event, {"bad": 1}])
    assert [s.status for s in statuses] == ["error", "invalid"]
    assert statuses[0].event == event
    assert statuses[0].context == {"message": "the event could not be stored; retry later"}
    assert failures == ["default", "default"]


def test_a_released_batch_is_made_again_only_when_a_failed_write_must_echo_it() -> None:
    sink = MemorySink()
    pipeline, _ = make(sink)
    sent = [web_event(), web_event()]
    remade: list[int] = []

    def remake() -> list[Any]:
        remade.append(1)
        return copy.deepcopy(sent)

    def produce(events: list[Any]) -> list[EventStatus]:
        prepared = pipeline.prepare(events, CONTEXT)
        prepared.release(remake)
        assert prepared.events == ()
        return asyncio.run(pipeline.produce(prepared))

    assert [s.status for s in produce(copy.deepcopy(sent))] == ["success", "success"]
    assert remade == [] and len(sink.events) == 2
    sink.available = False
    statuses = produce(copy.deepcopy(sent))
    assert [(s.status, s.event) for s in statuses] == [("error", sent[0]), ("error", sent[1])]
    assert remade == [1]


def test_events_test_kitchen_clients_emit_validate(refdata: Path) -> None:
    """The published production event (1.3.0) and the cross-client consistency event."""
    base = refdata / "wikimedia-schemas" / "examples"
    seed = json.loads((base / "growth_experiment_enrollment.json").read_text())
    catalog = catalog_from_document({"streams": {
        "splitlab.error.validation": {"schema_title": "error"},
        seed["meta"]["stream"]: {"schema_title": WEB}}})
    sink = MemorySink()
    pipeline = Pipeline(SchemaRepository(), catalog, {"default": sink})
    seed["meta"].pop("dt")
    assert [s.status for s in run(pipeline, [seed])] == ["success"]
    assert seed["$schema"] == WEB_13
    # The JS/PHP consistency fixture declares 1.5.0 (splitlab's reconstruction); its contextual
    # attributes (incl. mediawiki.is_production / is_debug_mode) are what 2.1.0 carries too.
    # Its top-level "test" is the consistency harness's own interaction data (tests/consistency/
    # js/main.js passes {test: 'consistency'}): no web base version has it.
    consistency = json.loads((base / "metrics-platform/tests/consistency/expected_event.json")
                             .read_text())
    consistency["meta"]["stream"] = "product_metrics.web_base"
    pipeline, _ = make()
    context = run(pipeline, [consistency])[0].context
    assert context is not None and "'test' was unexpected" in context["message"]
    consistency.pop("test")
    assert consistency["$schema"] == f"/{WEB}/1.5.0"
    assert run(pipeline, [consistency])[0].status == "success"
    consistency["$schema"] = f"/{WEB}/2.1.0"
    assert run(pipeline, [consistency])[0].status == "success"


def test_generated_ids_are_distinct_time_ordered_version_7_uuids() -> None:
    before = time.time()
    new_id = TimeOrderedIds()
    ids = [new_id() for _ in range(2000)]
    after = time.time()
    assert len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        millis = parsed.int >> 80
        assert int(before * 1000) - 1 <= millis <= int(after * 1000) + 1
    time.sleep(0.002)
    assert new_id() > max(ids)
    assert TimeOrderedIds()() not in ids


def test_ids_made_together_are_distinct_version_7_uuids_of_one_millisecond() -> None:
    new_id = TimeOrderedIds()
    singles = [new_id() for _ in range(3)]
    batches = [new_id.take(count) for count in (1, 50, 399, 401, 5000)]  # across block refills
    ids = singles + [i for batch in batches for i in batch]
    assert [len(b) for b in batches] == [1, 50, 399, 401, 5000]
    assert len(set(ids)) == len(ids)
    for batch in batches:
        parsed = [uuid.UUID(text) for text in batch]
        assert all(str(p) == t and p.version == 7 and p.variant == uuid.RFC_4122
                   for p, t in zip(parsed, batch, strict=True))
        assert len({p.int >> 80 for p in parsed}) == 1  # one clock read per batch


def test_a_forked_process_does_not_reuse_the_parents_randomness() -> None:
    new_id = TimeOrderedIds()
    new_id()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write_end, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 100).decode()
    parent = new_id()
    assert child[-17:] != parent[-17:], "the random tails differ"
