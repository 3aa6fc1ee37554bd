"""NATS JetStream sink (``SPLITLAB_NATS_URL``): a distributed log for events at scale.

Each event is published to ``<subject_prefix>.<stream>`` with its ``meta.id`` as ``Nats-Msg-Id``
(all of a write's messages pipelined, then their acknowledgements awaited together); a write
returns only after JetStream acknowledged every message (stored per the stream's storage
settings). JetStream drops a message whose id it saw within the stream's duplicate window
(default here: 10 minutes), which makes client retries, spool replays and several splitlab
instances sharing one stream idempotent.

The connection lives in the background (:class:`~splitlab.intake.remote.Connector`): a write
never waits for a connect; without a connection it fails at once, and a write whose
acknowledgements do not all arrive within :data:`~splitlab.intake.remote.OPERATION_TIMEOUT`
fails and hands the connection back to be replaced (a stalled server keeps TCP open).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from splitlab.errors import SinkError
from splitlab.intake.remote import OPERATION_TIMEOUT, Connector
from splitlab.intake.sinks import StoredEvent

DEFAULT_STREAM = "SPLITLAB_EVENTS"
DEFAULT_PREFIX = "splitlab.events"
DUPLICATE_WINDOW = 600.0
MAX_PENDING_ACKS = 100_000


class _JetStreamOpener:
    """Opens NATS connections (no automatic reconnect: the connector replaces a lost one)."""

    def __init__(self, url: str, stream: str, subject_prefix: str) -> None:
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix

    async def open(self) -> tuple[Client, JetStreamContext]:
        client = Client()
        try:
            # nats-py reads max_reconnect_attempts=0 as "retry for ever": the connector's own
            # deadline bounds this call instead.
            await client.connect(self.url, connect_timeout=2, allow_reconnect=False,
                                 max_reconnect_attempts=1, reconnect_time_wait=0)
            js = client.jetstream(timeout=OPERATION_TIMEOUT,
                                  publish_async_max_pending=MAX_PENDING_ACKS)
            await self._ensure_stream(js)
        except BaseException:
            await self.close((client, None))
            raise
        return client, js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        await ensure_stream(js, self.stream, self.subject_prefix)

    def usable(self, connection: tuple[Client, JetStreamContext | None]) -> bool:
        return connection[0].is_connected

    async def close(self, connection: tuple[Client, JetStreamContext | None]) -> None:
        client = connection[0]
        if not client.is_closed:
            await client.close()


def subject_prefix(stream: str) -> str:
    """The subjects of ``stream``: ``splitlab.events`` for the default stream, else its name in
    lower case."""
    return DEFAULT_PREFIX if stream == DEFAULT_STREAM else stream.lower()


async def ensure_stream(js: JetStreamContext, stream: str, subject_prefix: str) -> None:
    """Create the stream holding ``<subject_prefix>.>`` (file storage, the duplicate window)
    unless it exists (another instance creating it at the same moment is no error)."""
    try:
        await js.stream_info(stream)
        return
    except NotFoundError:
        pass
    try:
        await js.add_stream(StreamConfig(
            name=stream, subjects=[f"{subject_prefix}.>"], storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW))
    except Exception:  # created by another instance meanwhile: it must exist now
        await js.stream_info(stream)


class JetStreamSink:
    """Publishes events to a JetStream stream (created on first connect when absent)."""

    def __init__(
        self, url: str, stream: str = DEFAULT_STREAM, subject_prefix: str = DEFAULT_PREFIX
    ) -> None:
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self._connector: Connector[tuple[Client, JetStreamContext]] = Connector(
            _JetStreamOpener(url, stream, subject_prefix), f"NATS JetStream at {url}")

    def subject(self, stream: str) -> str:
        """The NATS subject events of ``stream`` are published on."""
        return f"{self.subject_prefix}.{stream}"

    async def start(self) -> None:
        """Connect in the background (waiting a moment for it); NATS being down is no error."""
        await self._connector.start()

    async def write(self, events: Sequence[StoredEvent]) -> None:
        """Publish ``events`` and wait for every acknowledgement."""
        connection = self._connector.current()
        _, js = connection
        try:
            acks = [await js.publish_async(self.subject(e.stream), e.body,
                                           headers={"Nats-Msg-Id": e.id}) for e in events]
            async with asyncio.timeout(OPERATION_TIMEOUT):
                await asyncio.gather(*acks)
        except Exception as error:  # connection loss, timeout, refusal: nothing is promised
            if isinstance(error, TimeoutError) or not connection[0].is_connected:
                self._connector.broken(connection, str(error) or type(error).__name__)
            raise SinkError(f"JetStream publish failed: {error}") from error

    async def close(self) -> None:
        """Disconnect (draining nothing: every write already awaited its acks)."""
        await self._connector.close()
