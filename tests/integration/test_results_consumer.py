"""The lake's JetStream source against the real NATS server: what a writer that died between
fetching a batch and committing it leaves to the next one."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from splitlab.intake.jetstream import JetStreamSink
from splitlab.intake.sinks import StoredEvent
from splitlab.results.consumer import JetStreamSource

pytestmark = pytest.mark.integration


def publish(url: str, stream: tuple[str, str], numbers: range) -> None:
    """Publish events ``e-<n>`` through the intake's own sink."""
    stream_name, dt = "product_metrics.web_base", "2026-11-22T00:00:00.000Z"
    events = [StoredEvent(f"e-{n}", stream_name, dt, orjson.dumps(
        {"meta": {"id": f"e-{n}", "stream": stream_name, "dt": dt}})) for n in numbers]

    async def run() -> None:
        sink = JetStreamSink(url, *stream)
        await sink.start()
        try:
            await sink.write(events)
        finally:
            await sink.close()

    asyncio.run(run())


def drain(source: JetStreamSource) -> list[str]:
    """Every event the source has now, each batch committed as the lake does; then closed."""
    ids: list[str] = []
    try:
        for batch in source.batches(None):
            ids += [event.id for event in batch.events]
            source.committed(batch)
    finally:
        source.close()
    return ids


def test_a_batch_its_writer_never_committed_comes_back_at_once_and_first(
    nats_url: str, js_stream: tuple[str, str]
) -> None:
    name, prefix = js_stream
    publish(nats_url, js_stream, range(5))
    dead = JetStreamSource(nats_url, name, "lake", prefix)
    taken = next(dead.batches(None))
    assert [event.id for event in taken.events] == [f"e-{n}" for n in range(5)]
    dead.close()  # killed before committing: the batch is never acknowledged
    publish(nats_url, js_stream, range(5, 8))
    # not after ack_wait (minutes), and not acknowledged away with the later messages
    assert drain(JetStreamSource(nats_url, name, "lake", prefix)) == [
        f"e-{n}" for n in range(8)]
    assert drain(JetStreamSource(nats_url, name, "lake", prefix)) == []
    publish(nats_url, js_stream, range(8, 10))
    assert drain(JetStreamSource(nats_url, name, "lake", prefix)) == ["e-8", "e-9"]
