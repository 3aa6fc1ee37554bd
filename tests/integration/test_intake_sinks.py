"""The remote sinks against the real servers, and the spool in front of them."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from urllib.parse import urlparse

import nats
import orjson
import psycopg
import pytest
from nats.js.api import DiscardPolicy, StreamConfig
from typer.testing import CliRunner

from splitlab.cli import app
from splitlab.errors import SinkError
from splitlab.intake.export import export
from splitlab.intake.jetstream import JetStreamSink
from splitlab.intake.postgres_log import PostgresEventReader, PostgresSink
from splitlab.intake.sinks import StoredEvent
from splitlab.intake.spool import SpoolingSink
from splitlab.intake.sqlite_log import SQLiteSink
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


def events(prefix: str, n: int, stream: str = "product_metrics.web_base") -> list[StoredEvent]:
    return [StoredEvent(f"{prefix}-{i}", stream, f"2026-11-22T00:00:0{i % 10}.000Z",
                        orjson.dumps({"meta": {"id": f"{prefix}-{i}"}, "n": i}))
            for i in range(n)]


@pytest.fixture
def table(postgres_url: str) -> str:
    name = f"t_events_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"DROP TABLE IF EXISTS {name}")


def test_postgres_sink_commits_dedupes_and_reads_back(postgres_url: str, table: str,
                                                      tmp_path: Path) -> None:
    async def main() -> None:
        sink = PostgresSink(postgres_url, table)
        await sink.start()
        await asyncio.gather(*(sink.write(events(f"p{i}", 50)) for i in range(8)))
        await sink.write(events("p0", 50))
        await sink.close()

    asyncio.run(main())
    reader = PostgresEventReader(postgres_url, table)
    rows = reader.read(limit=10_000)
    assert len(rows) == 400 and len({e.id for _, e in rows}) == 400
    first = reader.read(stream="product_metrics.web_base", since="2026-11-22T00:00:05Z", limit=1)
    assert first[0][1].dt >= "2026-11-22T00:00:05.000Z"
    assert orjson.loads(first[0][1].body)["meta"]["id"] == first[0][1].id
    assert reader.read(stream="other") == []
    assert [e.id for _, e in reader.last(count=2)] == [e.id for _, e in rows[-2:]]
    out = tmp_path / "events.jsonl"
    assert export(reader, out, since="2026-11-22T00:00:08Z") == 80
    assert all(orjson.loads(line)["n"] % 10 >= 8 for line in out.read_bytes().splitlines())
    reader.close()


def test_postgres_sink_keeps_awkward_text_as_sent(postgres_url: str, table: str) -> None:
    """Ids and bodies with quotes, backslashes, tabs, braces, commas and text beyond ASCII (the
    characters array and COPY formats escape) come back unchanged; the body is stored as jsonb
    and read back as the same JSON value."""
    awkward = ['a"b', "c\\d", "e\tf", "{g,h}", "NULL", "é中😀", " i ", "j'k"]
    sent = [StoredEvent(text, "product_metrics.web_base", "2026-11-22T00:00:01.000Z",
                        orjson.dumps({"meta": {"id": text}, "text": text * 3}))
            for text in awkward]

    async def main() -> None:
        sink = PostgresSink(postgres_url, table)
        await sink.start()
        await sink.write(sent)
        await sink.close()

    asyncio.run(main())
    reader = PostgresEventReader(postgres_url, table)
    got = {event.id: event for _, event in reader.read()}
    reader.close()
    assert sorted(got) == sorted(awkward)
    for event in sent:
        assert orjson.loads(got[event.id].body) == orjson.loads(event.body)
        assert got[event.id].dt == event.dt


def test_jetstream_sink_acks_and_dedupes_by_msg_id(nats_url: str, js_stream: tuple[str, str]
                                                   ) -> None:
    name, prefix = js_stream

    async def main() -> None:
        sink = JetStreamSink(nats_url, name, prefix)
        await sink.start()
        await sink.write(events("j", 30))
        await sink.write(events("j", 30))
        await sink.close()
        client = await nats.connect(nats_url)
        info = await client.jetstream().stream_info(name)
        assert info.state.messages == 30
        message = await client.jetstream().get_msg(name, 1)
        assert message.headers and message.headers["Nats-Msg-Id"] == "j-0"
        assert message.subject == f"{prefix}.product_metrics.web_base"
        await client.close()

    asyncio.run(main())


def test_spool_in_front_of_jetstream(nats_url: str, js_stream: tuple[str, str], tmp_path: Path
                                     ) -> None:
    name, prefix = js_stream
    target = urlparse(nats_url)

    async def main() -> None:
        proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 4222)
        await proxy.restore()
        inner = JetStreamSink(f"nats://127.0.0.1:{proxy.port}", name, prefix)
        sink = SpoolingSink(inner, SQLiteSink(tmp_path / "spool.sqlite"), "jetstream",
                            retry_seconds=0.2)
        await sink.start()
        await sink.write(events("before", 10))
        await proxy.cut()
        await sink.write(events("during", 10))
        await sink.write(events("during2", 10))
        assert await sink.spool.count() == 20
        await proxy.restore()
        for _ in range(100):
            if await sink.spool.count() == 0:
                break
            await asyncio.sleep(0.1)
        await sink.close()
        await proxy.cut()
        client = await nats.connect(nats_url)
        assert (await client.jetstream().stream_info(name)).state.messages == 30
        await client.close()

    asyncio.run(main())


def test_spool_in_front_of_postgres(postgres_url: str, table: str, tmp_path: Path) -> None:
    target = urlparse(postgres_url)

    async def main() -> None:
        proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
        await proxy.restore()
        url = postgres_url.replace(f":{target.port or 5432}/", f":{proxy.port}/")
        sink = SpoolingSink(PostgresSink(url, table), SQLiteSink(tmp_path / "spool.sqlite"),
                            "postgresql", retry_seconds=0.2)
        await proxy.cut()
        await sink.start()  # the server is "down" at start: no error, spooling
        await sink.write(events("down", 25))
        assert await sink.spool.count() == 25
        await proxy.restore()
        for _ in range(100):
            if await sink.spool.count() == 0:
                break
            await asyncio.sleep(0.1)
        await sink.write(events("up", 5))
        await sink.close()
        await proxy.cut()

    asyncio.run(main())
    reader = PostgresEventReader(postgres_url, table)
    assert len(reader.read(limit=1000)) == 30
    reader.close()


def test_cli_exports_from_postgresql(postgres_url: str, tmp_path: Path) -> None:
    prefix = f"t_cli_{uuid.uuid4().hex[:10]}_"
    try:
        async def fill() -> None:
            sink = PostgresSink(postgres_url, f"{prefix}events")
            await sink.start()
            await sink.write(events("c", 12))
            await sink.close()

        asyncio.run(fill())
        out = tmp_path / "out.jsonl"
        result = CliRunner().invoke(app, [
            "events", "export", "--source", "postgresql", "--database-url", postgres_url,
            "--table-prefix", prefix, "--output", str(out)])
        assert result.exit_code == 0, result.output
        assert [orjson.loads(line)["n"] for line in out.read_bytes().splitlines()] == list(
            range(12))
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute(f"DROP TABLE IF EXISTS {prefix}events")


def test_jetstream_refusal_is_a_sink_error_not_a_success(nats_url: str,
                                                         js_stream: tuple[str, str]) -> None:
    """A full stream (max 5 messages, discard new) refuses messages: the write must fail."""
    name, prefix = js_stream

    async def main() -> None:
        client = await nats.connect(nats_url)
        await client.jetstream().add_stream(StreamConfig(
            name=name, subjects=[f"{prefix}.>"], max_msgs=5, discard=DiscardPolicy.NEW))
        await client.close()
        sink = JetStreamSink(nats_url, name, prefix)
        await sink.start()
        await sink.write(events("ok", 5))
        with pytest.raises(SinkError):
            await sink.write(events("over", 3))
        await sink.close()

    asyncio.run(main())


def test_jetstream_without_a_stream_is_a_prompt_sink_error(nats_url: str,
                                                           js_stream: tuple[str, str]) -> None:
    """The stream deleted under a running sink: the server answers "no responders" for each
    message, and the write fails at once, not after its deadline."""
    name, prefix = js_stream

    async def main() -> None:
        sink = JetStreamSink(nats_url, name, prefix)
        await sink.start()
        await sink.write(events("before", 3))
        client = await nats.connect(nats_url)
        await client.jetstream().delete_stream(name)
        await client.close()
        started = asyncio.get_running_loop().time()
        with pytest.raises(SinkError, match="no stream takes the subject"):
            await sink.write(events("after", 3))
        assert asyncio.get_running_loop().time() - started < 2.0
        await sink.close()

    asyncio.run(main())


def test_jetstream_acknowledgements_are_counted_per_write(nats_url: str,
                                                          js_stream: tuple[str, str]) -> None:
    """Concurrent writes of different sizes on one connection each return once their own
    messages are stored, and the stream holds every message once (a repeated id included)."""
    name, prefix = js_stream

    async def main() -> int:
        sink = JetStreamSink(nats_url, name, prefix)
        await sink.start()
        await asyncio.gather(*(sink.write(events(f"w{i}", i + 1)) for i in range(20)))
        await sink.write(events("w3", 4))  # all four already stored
        await asyncio.wait_for(sink.write([]), 1)  # nothing to wait for
        await sink.close()
        client = await nats.connect(nats_url)
        stored = (await client.jetstream().stream_info(name)).state.messages
        await client.close()
        return int(stored)

    assert asyncio.run(main()) == sum(range(1, 21))

