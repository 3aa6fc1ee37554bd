"""The lake's JetStream source: a durable pull consumer on the intake's stream.

The consumer (acknowledge-all policy) keeps the position in NATS, so the lake stores no
checkpoint for it. A batch is acknowledged — by acknowledging its last message, synchronously —
only in :meth:`JetStreamSource.committed`, i.e. after its Parquet files were renamed into place
and its ids committed. A writer that dies before that leaves the batch unacknowledged, and the
next source takes it back at once: it finds the consumer holding messages nobody acknowledged
and creates it again from its acknowledgement floor, so they are delivered again, before any
later message; the lake's id index drops whatever of them had already landed. (Left to NATS,
they would come back only after ``ack_wait``, and with acknowledge-all the next writer's first
acknowledgement of a later message would acknowledge them too: lost.) The source connects while
the lake holds its one-writer lock, so no live writer still holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from splitlab.intake.jetstream import DEFAULT_PREFIX, DEFAULT_STREAM, ensure_stream
from splitlab.intake.sinks import StoredEvent
from splitlab.results.lake import Batch

FETCH = 10_000
ACK_WAIT_SECONDS = 300.0
FETCH_WAIT_SECONDS = 1.0


def stored_event(data: bytes) -> StoredEvent | None:
    """The stored form of a message the intake published (``None`` when it is not an event)."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(meta, dict):
        return None
    fields = (meta.get("id"), meta.get("stream"), meta.get("dt"))
    if not all(isinstance(value, str) for value in fields):
        return None
    return StoredEvent(str(fields[0]), str(fields[1]), str(fields[2]), data)


class JetStreamSource:
    """A durable consumer named ``durable`` on ``stream`` (``<prefix>.>`` subjects)."""

    name = "jetstream"

    def __init__(self, url: str, stream: str = DEFAULT_STREAM, durable: str = "splitlab-lake",
                 subject_prefix: str = DEFAULT_PREFIX, fetch: int = FETCH) -> None:
        self.url = url
        self.stream = stream
        self.durable = durable
        self.subject_prefix = subject_prefix
        self.fetch = fetch
        self._loop = asyncio.new_event_loop()
        self._client: Client | None = None
        self._subscription: Any = None
        self._last: dict[int, Msg] = {}

    def _run(self, work: Any) -> Any:
        return self._loop.run_until_complete(work)

    async def _connect(self) -> Any:
        if self._subscription is None:
            client = await nats.connect(self.url, connect_timeout=2, max_reconnect_attempts=0,
                                        allow_reconnect=False)
            js = client.jetstream(timeout=10)
            await ensure_stream(js, self.stream, self.subject_prefix)
            await self._ensure_consumer(js)
            self._subscription = await js.pull_subscribe_bind(durable=self.durable,
                                                              stream=self.stream)
            self._client = client
        return self._subscription

    async def _ensure_consumer(self, js: JetStreamContext) -> None:
        """Create the consumer when absent; when it holds messages delivered but never
        acknowledged (their writer died), create it again from its acknowledgement floor."""
        try:
            info = await js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            start = None
        else:
            if not info.num_ack_pending:
                return
            await js.delete_consumer(self.stream, self.durable)
            start = info.ack_floor.stream_seq + 1
        await js.add_consumer(self.stream, ConsumerConfig(
            name=self.durable, durable_name=self.durable,
            filter_subject=f"{self.subject_prefix}.>", ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.ALL if start is None else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start, ack_wait=ACK_WAIT_SECONDS, max_ack_pending=-1))

    async def _next(self) -> list[Msg]:
        subscription = await self._connect()
        try:
            messages: list[Msg] = await subscription.fetch(self.fetch,
                                                           timeout=FETCH_WAIT_SECONDS)
        except TimeoutError:
            # Nothing came within the wait. nats-py raises its own TimeoutError, or a plain
            # asyncio one when the wait ran out between its two pull requests.
            return []
        return messages

    def batches(self, position: str | None) -> Iterator[Batch]:
        """Batches of what the consumer has not acknowledged, until a fetch comes back empty."""
        while messages := self._run(self._next()):
            events = [e for e in (stored_event(m.data) for m in messages) if e is not None]
            batch = Batch(events, None)
            self._last[id(batch)] = messages[-1]
            yield batch

    def committed(self, batch: Batch) -> None:
        """Acknowledge the batch (its last message; the policy acknowledges all before it)."""
        message = self._last.pop(id(batch))
        self._run(message.ack_sync(timeout=10))

    def close(self) -> None:
        """Disconnect (unacknowledged messages stay with the consumer)."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._run(self._client.close())
        self._client, self._subscription = None, None
        self._loop.close()
