"""Privacy: client addresses and (where the stream says so) user agents are never stored.

Events go through the real app with X-Forwarded-For, X-Client-IP and a user agent on a stream
that does not keep the user agent, in the headers and in the events (``agent.ua_string`` as Test
Kitchen's clients send it, ``http.request_headers``, ``http.client_ip``), in valid events and in
invalid ones (which become error events on the error stream); then every stored byte is scanned:
the SQLite files (database, WAL and shared memory), the PostgreSQL rows, the JetStream messages
with their headers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from pathlib import Path

import nats
import orjson
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from splitlab.intake.jetstream import JetStreamSink
from splitlab.intake.postgres_log import PostgresSink
from splitlab.intake.sinks import Sink
from splitlab.service.app import create_app
from splitlab.service.intake import IntakeComponent
from splitlab.service.settings import Settings
from tests.unit.intake.conftest import web_event

SECRETS = {"x-forwarded-for": "203.0.113.77, 10.9.8.7", "x-client-ip": "198.51.100.23",
           "user-agent": "Mozilla/5.0 (PrivacyProbe 4.2; Zx)"}
BODY_UA = "Mozilla/5.0 (BodyAgentProbe 7.1; Zx)"
NEEDLES = [b"203.0.113.77", b"10.9.8.7", b"198.51.100.23", b"PrivacyProbe", b"BodyAgentProbe"]
ERROR_STREAM = b"splitlab.error.validation"


def send(tmp_path: Path, sinks: Mapping[str, Sink] | None = None) -> None:
    """Valid and invalid events, with the secrets in headers and (for IPs) in the body too."""
    settings = Settings(data_dir=tmp_path)
    component = IntakeComponent(settings, CollectorRegistry(), sinks=sinks)
    body_headers = {"X-Forwarded-For": SECRETS["x-forwarded-for"],
                    "user-agent": SECRETS["user-agent"]}
    agent = {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser",
             "ua_string": BODY_UA}
    leaky = {"request_headers": body_headers, "client_ip": "198.51.100.23"}
    batch = [web_event(), web_event("product_metrics.experiment_enrollment"),
             web_event(http=leaky), web_event(agent=agent),
             # invalid: each becomes an error event holding the refused event
             web_event(agent={"client_platform": "bogus", "ua_string": BODY_UA}, http=leaky),
             web_event(agent={**agent, "ua_string": 7}),
             web_event(agent=agent, http=leaky, action_context=["not", "a", "string"]),
             {"meta": {"stream": "nope"}, "agent": agent, "http": leaky},
             web_event(agent=agent, **{"$schema": "/nope/1.0.0"})]
    with TestClient(create_app(settings, [component])) as client:
        for hasty in ("false", "true"):
            response = client.post("/v1/events", content=orjson.dumps(batch), headers=SECRETS,
                                   params={"hasty": hasty})
            assert response.status_code in (207, 202)


def assert_clean(data: bytes, errors: int = 10) -> None:
    assert data.count(ERROR_STREAM) >= errors, "the scan sees the error events"
    for needle in NEEDLES:
        assert needle not in data, needle


def test_sqlite_files_hold_no_address_or_user_agent(tmp_path: Path) -> None:
    send(tmp_path)
    files = sorted(tmp_path.glob("events*.sqlite*"))
    assert files and sum(f.stat().st_size for f in files) > 0
    stored = b"".join(f.read_bytes() for f in files)
    assert b"product_metrics.experiment_enrollment" in stored  # the scan sees the events
    assert_clean(stored)


def test_the_scan_would_find_a_kept_user_agent(tmp_path: Path) -> None:
    """Control: on a stream that keeps the user agent, the same scan finds it."""
    streams = tmp_path / "streams.json"
    streams.write_text('{"streams": {"splitlab.error.validation": {"schema_title": "error"},'
                       ' "product_metrics.web_base": {"schema_title": '
                       '"analytics/product_metrics/web/base", "keep_user_agent": true}}}')
    settings = Settings(data_dir=tmp_path, streams_file=streams)
    with TestClient(create_app(settings, [IntakeComponent(settings, CollectorRegistry())])) as c:
        assert c.post("/v1/events", content=orjson.dumps([web_event()]),
                      headers=SECRETS).status_code == 201
    stored = b"".join(f.read_bytes() for f in tmp_path.glob("events*.sqlite*"))
    assert b"PrivacyProbe" in stored
    assert b"203.0.113.77" not in stored


def test_error_events_drop_the_user_agent_of_a_stream_that_keeps_it(tmp_path: Path) -> None:
    """The error stream keeps no user agent: a refused event from a stream that keeps it loses
    it, in the recorded event and in the message (which quotes a value the schema refused)."""
    streams = tmp_path / "streams.json"
    streams.write_text('{"streams": {"splitlab.error.validation": {"schema_title": "error"},'
                       ' "product_metrics.web_base": {"schema_title": '
                       '"analytics/product_metrics/web/base", "keep_user_agent": true}}}')
    settings = Settings(data_dir=tmp_path, streams_file=streams)
    agent = {"client_platform": "mediawiki_js", "ua_string": BODY_UA}
    batch = [web_event(agent=agent, action=["not a string"]),
             web_event(agent={**agent, "ua_string": {"nested": BODY_UA}}),
             web_event(agent={**agent, "ua_string": BODY_UA * 3},
                       http={"request_headers": {"User-Agent": BODY_UA}}, dt="yesterday")]
    with TestClient(create_app(settings, [IntakeComponent(settings, CollectorRegistry())])) as c:
        response = c.post("/v1/events", content=orjson.dumps(batch), headers=SECRETS)
        assert response.status_code == 400
        assert BODY_UA in str(response.json()["invalid"][1]["context"]["message"])
    assert_clean(b"".join(f.read_bytes() for f in tmp_path.glob("events.sqlite*")), errors=3)


@pytest.mark.integration
def test_postgres_rows_hold_no_address_or_user_agent(postgres_url: str, tmp_path: Path) -> None:
    table = f"t_privacy_{uuid.uuid4().hex[:12]}"
    try:
        send(tmp_path, {"default": PostgresSink(postgres_url, table)})
        with psycopg.connect(postgres_url) as db:
            rows = db.execute(f"SELECT t::text FROM {table} t").fetchall()
        assert len(rows) >= 6
        assert_clean("\n".join(r[0] for r in rows).encode())
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.integration
def test_jetstream_messages_hold_no_address_or_user_agent(nats_url: str, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:12]
    name, prefix = f"T_PRIVACY_{suffix}", f"t.privacy.{suffix}"

    async def messages() -> list[bytes]:
        client = await nats.connect(nats_url)
        js = client.jetstream()
        try:
            count = (await js.stream_info(name)).state.messages
            found = []
            for seq in range(1, count + 1):
                message = await js.get_msg(name, seq)
                found.append(message.data + orjson.dumps(message.headers or {})
                             + message.subject.encode())
            return found
        finally:
            await js.delete_stream(name)
            await client.close()

    send(tmp_path, {"default": JetStreamSink(nats_url, name, prefix)})
    stored = asyncio.run(messages())
    assert len(stored) >= 6
    assert_clean(b"\n".join(stored))
