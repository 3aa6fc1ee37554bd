"""Contract tests of POST /v1/events: every status and body shape (EventGate's contract)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from splitlab.intake.sinks import MemorySink
from splitlab.service.app import create_app
from splitlab.service.intake import IntakeComponent
from splitlab.service.metrics import Metrics
from splitlab.service.settings import Settings
from tests.unit.intake.conftest import web_event

URL = "/v1/events"
ERRORS = "splitlab.error.validation"


class Service:
    """A test client over the real app, with an in-memory sink."""

    def __init__(self, client: TestClient, sink: MemorySink, component: IntakeComponent) -> None:
        self.client, self.sink, self.component = client, sink, component

    def post(self, body: Any, **kwargs: Any) -> Any:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
        return self.client.post(URL, content=content, headers=headers, **kwargs)

    def stored(self, stream: str = "product_metrics.web_base") -> list[dict[str, Any]]:
        return [orjson.loads(e.body) for e in self.sink.events if e.stream == stream]


def make_service(tmp_path: Path, **settings: Any) -> Iterator[Service]:
    sink = MemorySink()
    metrics = Metrics()
    component = IntakeComponent(Settings(data_dir=tmp_path, **settings), metrics.registry,
                                sinks={"default": sink})
    app = create_app(Settings(data_dir=tmp_path), [component], metrics)
    with TestClient(app) as client:
        yield Service(client, sink, component)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    yield from make_service(tmp_path)


def test_all_accepted_is_201_with_empty_body(service: Service) -> None:
    response = service.post([web_event(), web_event("product_metrics.experiment_enrollment")])
    assert response.status_code == 201
    assert response.content == b""
    assert len(service.stored()) == 1
    assert len(service.stored("product_metrics.experiment_enrollment")) == 1


def test_single_object_body_is_one_event(service: Service) -> None:
    assert service.post(web_event()).status_code == 201
    assert len(service.stored()) == 1


def test_text_plain_beacon_is_accepted(service: Service) -> None:
    response = service.client.post(URL, content=json.dumps([web_event()]),
                                    headers={"content-type": "text/plain;charset=UTF-8"})
    assert response.status_code == 201
    assert len(service.stored()) == 1


def test_other_content_types_are_415(service: Service) -> None:
    response = service.post([web_event()], headers={"content-type": "application/xml"})
    assert response.status_code == 415
    assert "application/json or text/plain" in response.json()["message"]
    assert service.sink.events == []


def test_mixed_batch_is_207_with_per_event_statuses(service: Service) -> None:
    wrong_stream = web_event("no.such.stream")
    wrong_schema = web_event(**{"$schema": "/error/2.1.0"})
    invalid = web_event(agent={"client_platform": "commodore64"})
    response = service.post([web_event(), invalid, wrong_stream, wrong_schema, web_event()])
    assert response.status_code == 207
    body = response.json()
    assert body["message"] == "2 out of 5 events were accepted."
    assert body["error"] == []
    assert [entry["status"] for entry in body["invalid"]] == ["invalid"] * 3
    assert [entry["event"] for entry in body["invalid"]] == [invalid, wrong_stream, wrong_schema]
    assert all(set(entry) == {"status", "event", "context"} for entry in body["invalid"])
    assert "client_platform" in body["invalid"][0]["context"]["message"]
    assert len(service.stored()) == 2
    assert len(service.stored(ERRORS)) == 3


def test_all_invalid_is_400_with_statuses(service: Service) -> None:
    response = service.post([{"meta": {"stream": "x"}}, 42])
    assert response.status_code == 400
    assert response.json()["message"] == "0 out of 2 events were accepted."
    assert len(response.json()["invalid"]) == 2
    assert service.stored() == []


@pytest.mark.parametrize("body", [b"", b"   \n", b"[]"])
def test_empty_body_is_400(service: Service, body: bytes) -> None:
    response = service.post(body)
    assert response.status_code == 400
    assert "empty" in response.json()["message"]


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe[]", b"[1,]", b'[{"a": 1}'])
def test_bytes_that_are_not_json_are_a_clear_400(service: Service, body: bytes) -> None:
    response = service.post(body)
    assert response.status_code == 400
    assert response.json()["message"].startswith("the body is not valid JSON")
    assert service.sink.events == []


def test_deeply_nested_json_is_400_not_a_crash(service: Service) -> None:
    response = service.post(b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400
    deep: Any = "x"
    for _ in range(200):
        deep = {"a": deep}
    response = service.post([web_event(action_context=None, page=deep)])
    assert response.status_code == 400
    assert service.stored() == []


def test_events_nested_too_deeply_to_store_are_invalid_not_a_crash(service: Service) -> None:
    deep: Any = "x"
    for _ in range(300):  # parses (orjson reads 1024 levels) but cannot be written back (254)
        deep = {"a": deep}
    open_meta = web_event()
    open_meta["meta"]["x"] = deep
    batch = [web_event(), web_event(page=deep), web_event(http={"x": deep}), open_meta]
    response = service.post(json.dumps(batch).encode())
    assert response.status_code == 207
    body = response.json()
    assert body["message"] == "1 out of 4 events were accepted."
    assert [entry["event"] for entry in body["invalid"]] == [None, None, None]
    assert all("250 levels" in entry["context"]["message"] or "page" in entry["context"][
        "message"] for entry in body["invalid"])
    errors = service.stored(ERRORS)
    assert len(errors) == 3 and all("raw_event" not in e for e in errors)
    assert len(service.stored()) == 1


def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    for service in make_service(tmp_path, events_max_body=10_000):
        big = [web_event(action_context="x" * 8000), web_event(action_context="y" * 8000)]
        response = service.post(big)
        assert response.status_code == 413
        assert "10000 bytes" in response.json()["message"]
        chunked = service.client.post(URL, content=iter([orjson.dumps(big)]))
        assert chunked.status_code == 413
        assert service.sink.events == []
        assert service.post([web_event(action_context="x" * 8000)]).status_code == 201


def test_huge_batch_under_the_limit_is_accepted(service: Service) -> None:
    batch = [web_event() for _ in range(5000)]
    assert len(orjson.dumps(batch)) < 4 * 1024 * 1024
    assert service.post(batch).status_code == 201
    assert len(service.stored()) == 5000


def test_sink_failure_is_500_saying_nothing_internal(service: Service) -> None:
    service.sink.available = False
    event = web_event()
    response = service.post([event])
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == [{"status": "error", "event": event,
                              "context": {"message": "the event could not be stored; retry later"}}]
    assert "memory" not in response.text and "unavailable" not in response.text


def test_failed_and_invalid_without_success_is_500(service: Service) -> None:
    service.sink.available = False
    response = service.post([web_event(), {"nope": 1}])
    assert response.status_code == 500
    assert len(response.json()["invalid"]) == 1 and len(response.json()["error"]) == 1


def test_stored_and_failed_is_207(tmp_path: Path) -> None:
    streams = tmp_path / "streams.json"
    streams.write_text(json.dumps({"streams": {
        ERRORS: {"schema_title": "error"},
        "product_metrics.web_base": {"schema_title": "analytics/product_metrics/web/base"},
        "broken": {"schema_title": "analytics/product_metrics/web/base", "sink": "sqlite"}}}))
    working, broken = MemorySink(), MemorySink()
    broken.available = False
    settings = Settings(data_dir=tmp_path, streams_file=streams)
    component = IntakeComponent(settings, Metrics().registry,
                                sinks={"default": working, "sqlite": broken})
    with TestClient(create_app(Settings(data_dir=tmp_path), [component])) as client:
        response = client.post(URL, content=orjson.dumps([web_event(), web_event("broken")]))
    assert response.status_code == 207
    assert response.json()["message"] == "1 out of 2 events were accepted."
    assert [e["event"]["meta"]["stream"] for e in response.json()["error"]] == ["broken"]
    assert len(working.events) == 1


def test_duplicates_by_meta_id_are_stored_once(service: Service) -> None:
    event = web_event()
    event["meta"]["id"] = "5b7e1a9c-1d2e-4f00-8a00-000000000042"
    assert service.post([event, event]).status_code == 201
    assert service.post([event]).status_code == 201
    assert len(service.stored()) == 1


def test_hasty_is_202_and_processed_after(service: Service) -> None:
    response = service.post([web_event(), {"bad": True}], params={"hasty": "true"})
    assert response.status_code == 202
    assert response.content == b""
    deadline = time.monotonic() + 10
    while len(service.sink.events) < 2 and time.monotonic() < deadline:
        service.client.get("/healthz")
    assert len(service.stored()) == 1 and len(service.stored(ERRORS)) == 1


def test_hasty_batch_larger_than_the_queue_is_taken_not_refused_for_ever(tmp_path: Path) -> None:
    """Issue 10 item 3: a hasty batch bigger than the whole queue used to get 503 for ever."""
    for service in make_service(tmp_path, events_hasty_queue=3):
        response = service.post([web_event() for _ in range(4)], params={"hasty": "true"})
        assert response.status_code == 202
        assert response.headers["x-status-message"] == "4 events hastily received."
        assert "retry-after" not in response.headers
        assert len(service.stored()) == 4  # processed before the answer: the queue had no room
        assert service.post([web_event()], params={"hasty": "true"}).status_code == 202
        text = service.client.get("/metrics").text
        assert "splitlab_event_hasty_inline_total 1.0" in text


def test_headers_enrich_and_client_addresses_are_ignored(service: Service) -> None:
    response = service.post([web_event()], headers={
        "x-request-id": "req-77", "user-agent": "Secret/Agent 1.0",
        "x-forwarded-for": "203.0.113.9", "x-client-ip": "198.51.100.7"})
    assert response.status_code == 201
    [event] = service.stored()
    assert event["meta"]["request_id"] == "req-77"
    raw = service.sink.events[0].body
    for secret in (b"Secret/Agent", b"203.0.113.9", b"198.51.100.7"):
        assert secret not in raw


def test_metrics_count_by_stream(service: Service) -> None:
    service.post([web_event(), {"meta": {"stream": "product_metrics.web_base"}}])
    service.post(b"nope")
    text = service.client.get("/metrics").text
    assert 'splitlab_events_accepted_total{stream="product_metrics.web_base"} 1.0' in text
    assert 'splitlab_events_invalid_total{stream="product_metrics.web_base"} 1.0' in text
    assert 'splitlab_event_requests_rejected_total{reason="not_json"} 1.0' in text
    assert "splitlab_event_batch_size_count 1.0" in text


def test_build_sinks_follows_settings(tmp_path: Path) -> None:
    from splitlab.errors import ConfigError
    from splitlab.intake.spool import SpoolingSink
    from splitlab.intake.sqlite_log import SQLiteSink
    from splitlab.intake.streams import default_catalog
    from splitlab.service.intake import build_sinks

    catalog = default_catalog()
    sinks = build_sinks(Settings(data_dir=tmp_path), catalog, lambda name, depth: None)
    assert isinstance(sinks["default"], SQLiteSink) and sinks["default"] is sinks["sqlite"]
    sinks = build_sinks(Settings(data_dir=tmp_path, events_sink="jetstream"), catalog,
                        lambda name, depth: None)
    assert isinstance(sinks["default"], SpoolingSink)
    with pytest.raises(ConfigError, match="SPLITLAB_DATABASE_URL"):
        build_sinks(Settings(data_dir=tmp_path, events_sink="postgresql"), catalog,
                    lambda name, depth: None)
    with pytest.raises(ConfigError, match="unknown sink"):
        build_sinks(Settings(data_dir=tmp_path, events_sink="kafka"), catalog,
                    lambda name, depth: None)


def test_settings_read_the_intake_variables(tmp_path: Path) -> None:
    from splitlab.errors import ConfigError

    settings = Settings.from_env({"SPLITLAB_EVENTS_MAX_BODY": "1000", "SPLITLAB_EVENTS_SINK":
                                  "jetstream", "SPLITLAB_STREAMS_FILE": "s.yaml"})
    assert settings.events_max_body == 1000 and settings.events_sink == "jetstream"
    assert settings.streams_file == Path("s.yaml") and settings.events_hasty_queue == 10_000
    with pytest.raises(ConfigError, match="SPLITLAB_EVENTS_HASTY_QUEUE"):
        Settings.from_env({"SPLITLAB_EVENTS_HASTY_QUEUE": "-3"})


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[Service]:
    yield from make_service(tmp_path, events_max_in_flight=15)


def test_a_worker_holding_its_cap_of_events_answers_503_with_retry_after(capped: Service) -> None:
    """A stalled sink must not make the worker accumulate requests: past the cap, 503."""
    from concurrent.futures import ThreadPoolExecutor

    capped.sink.delay = 2.0
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: capped.post([web_event()] * 10), range(4)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 503, 503, 503]
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["message"]
    capped.sink.delay = 0.0
    assert capped.post([web_event()] * 40).status_code == 201, "alone, any batch is taken"
    text = capped.client.get("/metrics").text
    assert 'splitlab_event_requests_rejected_total{reason="in_flight"} 3.0' in text


def test_settings_read_the_sink_deadline_and_the_in_flight_cap() -> None:
    from splitlab.errors import ConfigError

    settings = Settings.from_env({"SPLITLAB_EVENTS_SINK_TIMEOUT": "0.2",
                                  "SPLITLAB_EVENTS_MAX_IN_FLIGHT": "500"})
    assert settings.events_sink_timeout == 0.2 and settings.events_max_in_flight == 500
    defaults = Settings.from_env({})
    assert defaults.events_sink_timeout == 0.5 and defaults.events_max_in_flight == 20_000
    for bad in ("0", "61", "nan"):
        with pytest.raises(ConfigError, match="SPLITLAB_EVENTS_SINK_TIMEOUT"):
            Settings.from_env({"SPLITLAB_EVENTS_SINK_TIMEOUT": bad})
