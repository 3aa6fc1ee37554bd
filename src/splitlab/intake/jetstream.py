"""NATS JetStream sink (``SPLITLAB_NATS_URL``): a distributed log for events at scale.

Each event is published to ``<subject_prefix>.<stream>`` with its ``meta.id`` as ``Nats-Msg-Id``
(all of a write's messages pipelined, then their acknowledgements awaited together); a write
returns only after JetStream acknowledged every message (stored per the stream's storage
settings). JetStream drops a message whose id it saw within the stream's duplicate window
(default here: 10 minutes), which makes client retries and spool replays idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from splitlab.errors import SinkError
from splitlab.intake.sinks import StoredEvent

DEFAULT_STREAM = "SPLITLAB_EVENTS"
DEFAULT_PREFIX = "splitlab.events"
PUBLISH_TIMEOUT = 3.0
DUPLICATE_WINDOW = 600.0


def subject_prefix(stream: str) -> str:
    """The subjects of ``stream``: ``splitlab.events`` for the default stream, else its name in
    lower case."""
    return DEFAULT_PREFIX if stream == DEFAULT_STREAM else stream.lower()


async def ensure_stream(js: JetStreamContext, stream: str, subject_prefix: str) -> None:
    """Create the stream holding ``<subject_prefix>.>`` (file storage, the duplicate window)
    unless it exists."""
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(StreamConfig(
            name=stream, subjects=[f"{subject_prefix}.>"], storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW))


class JetStreamSink:
    """Publishes events to a JetStream stream (created on first connect when absent)."""

    def __init__(
        self, url: str, stream: str = DEFAULT_STREAM, subject_prefix: str = DEFAULT_PREFIX
    ) -> None:
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._lock = asyncio.Lock()

    def subject(self, stream: str) -> str:
        """The NATS subject events of ``stream`` are published on."""
        return f"{self.subject_prefix}.{stream}"

    async def _connect(self) -> JetStreamContext:
        async with self._lock:
            if self._js is not None and self._client is not None and self._client.is_connected:
                return self._js
            await self._drop()
            client = await nats.connect(
                self.url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
            js = client.jetstream(timeout=PUBLISH_TIMEOUT)
            await ensure_stream(js, self.stream, self.subject_prefix)
            self._client, self._js = client, js
            return js

    async def _drop(self) -> None:
        client, self._client, self._js = self._client, None, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(Exception):  # closing a broken connection
                await client.close()

    async def start(self) -> None:
        """Connect and ensure the stream; raises :class:`SinkError` when NATS is down."""
        try:
            await self._connect()
        except Exception as error:
            raise SinkError(f"NATS JetStream is unavailable: {error}") from error

    async def write(self, events: Sequence[StoredEvent]) -> None:
        """Publish ``events`` and wait for every acknowledgement."""
        try:
            js = await self._connect()
            acks = [await js.publish_async(self.subject(e.stream), e.body,
                                           wait_stall=PUBLISH_TIMEOUT,
                                           headers={"Nats-Msg-Id": e.id}) for e in events]
            await asyncio.wait_for(asyncio.gather(*acks), PUBLISH_TIMEOUT)
        except Exception as error:  # connection loss, timeout, no ack: nothing is promised
            await self._drop()
            raise SinkError(f"JetStream publish failed: {error}") from error

    async def close(self) -> None:
        """Disconnect (draining nothing: every write already awaited its acks)."""
        await self._drop()
