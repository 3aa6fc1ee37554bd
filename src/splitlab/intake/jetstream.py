"""NATS JetStream sink (``SPLITLAB_NATS_URL``): a distributed log for events at scale.

Each event is published to ``<subject_prefix>.<stream>`` with its ``meta.id`` as ``Nats-Msg-Id``
(all of a write's messages pipelined, then their acknowledgements awaited together); a write
returns only after JetStream acknowledged every message (stored per the stream's storage
settings). The acknowledgements come to one inbox subscription per connection
(:class:`AckInbox`), which counts them per write: nats-py's ``publish_async`` made a future, an
inbox id and a decoded acknowledgement object per message, a sixth of a worker's CPU at batches
of 50. JetStream drops a message whose id it saw within the stream's duplicate window
(default here: 10 minutes), which makes client retries, spool replays and several splitlab
instances sharing one stream idempotent.

The connection lives in the background (:class:`~splitlab.intake.remote.Connector`): a write
never waits for a connect; without a connection it fails at once, and a write whose
acknowledgements do not all arrive within :data:`~splitlab.intake.remote.OPERATION_TIMEOUT`
fails and hands the connection back to be replaced (a stalled server keeps TCP open).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from splitlab.errors import SinkError
from splitlab.intake.remote import OPERATION_TIMEOUT, Connector
from splitlab.intake.sinks import StoredEvent

DEFAULT_STREAM = "SPLITLAB_EVENTS"
DEFAULT_PREFIX = "splitlab.events"
DUPLICATE_WINDOW = 600.0


class _JetStreamOpener:
    """Opens NATS connections (no automatic reconnect: the connector replaces a lost one)."""

    def __init__(self, url: str, stream: str, subject_prefix: str) -> None:
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix

    async def open(self) -> tuple[Client, AckInbox]:
        client = Client()
        try:
            # nats-py reads max_reconnect_attempts=0 as "retry for ever": the connector's own
            # deadline bounds this call instead.
            await client.connect(self.url, connect_timeout=2, allow_reconnect=False,
                                 max_reconnect_attempts=1, reconnect_time_wait=0)
            await ensure_stream(client.jetstream(timeout=OPERATION_TIMEOUT), self.stream,
                                self.subject_prefix)
            inbox = AckInbox(client)
            await inbox.start()
        except BaseException:
            await self.close((client, None))
            raise
        return client, inbox

    def usable(self, connection: tuple[Client, AckInbox | None]) -> bool:
        return connection[0].is_connected

    async def close(self, connection: tuple[Client, AckInbox | None]) -> None:
        client = connection[0]
        if not client.is_closed:
            await client.close()


class _Awaited:
    """The acknowledgements one write still waits for."""

    __slots__ = ("error", "future", "remaining")

    def __init__(self, count: int) -> None:
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.remaining = count
        self.error = ""


class AckInbox:
    """Receives JetStream's acknowledgements for one connection on one wildcard subscription.

    Each published message gets the reply subject ``<inbox>.<n>``; :meth:`expect` hands out a
    write's reply subjects and the future its acknowledgements complete. The future succeeds
    when every message was stored (an acknowledgement with a sequence number, a duplicate
    included) and fails with the first refusal otherwise (an ``error`` answer, or no stream
    answering the subject)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.prefix = client.new_inbox() + "."
        self._counter = itertools.count()
        self._waiting: dict[str, _Awaited] = {}

    async def start(self) -> None:
        """Subscribe to the inbox."""
        await self.client.subscribe(self.prefix + "*", cb=self._receive)

    def expect(self, count: int) -> tuple[list[str], asyncio.Future[None]]:
        """Reply subjects for ``count`` messages, and the future their acknowledgements end."""
        awaited = _Awaited(count)
        tokens = [str(n) for n in itertools.islice(self._counter, count)]
        for token in tokens:
            self._waiting[token] = awaited
        return [self.prefix + token for token in tokens], awaited.future

    def forget(self, replies: Sequence[str]) -> None:
        """Stop waiting for these replies (their write gave up)."""
        for reply in replies:
            self._waiting.pop(reply[len(self.prefix):], None)

    async def _receive(self, message: Msg) -> None:
        awaited = self._waiting.pop(message.subject[len(self.prefix):], None)
        if awaited is None or awaited.future.done():
            return
        refusal = refused(message)
        if refusal and not awaited.error:
            awaited.error = refusal
        awaited.remaining -= 1
        if awaited.remaining == 0:
            if awaited.error:
                awaited.future.set_exception(SinkError(f"refused: {awaited.error}"))
            else:
                awaited.future.set_result(None)


def refused(message: Msg) -> str:
    """Why JetStream did not store a published message, from its acknowledgement ("" when it
    was stored, or was a duplicate of a stored one)."""
    headers = message.headers or {}
    status = headers.get("Status")
    if status == "503":
        return "no stream takes the subject (status 503, no responders)"
    if status:
        return f"status {status} {headers.get('Description', '')}".strip()
    try:
        answer = orjson.loads(message.data)
    except orjson.JSONDecodeError:
        return "an acknowledgement that is not JSON"
    if not isinstance(answer, dict):
        return "an acknowledgement that is not a JSON object"
    error = answer.get("error")
    if error is not None:
        return str(error.get("description", error) if isinstance(error, dict) else error)
    return "" if isinstance(answer.get("seq"), int) else "an acknowledgement without a sequence"


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
        self._connector: Connector[tuple[Client, AckInbox]] = Connector(
            _JetStreamOpener(url, stream, subject_prefix), f"NATS JetStream at {url}")

    def subject(self, stream: str) -> str:
        """The NATS subject events of ``stream`` are published on."""
        return f"{self.subject_prefix}.{stream}"

    async def start(self) -> None:
        """Connect in the background (waiting a moment for it); NATS being down is no error."""
        await self._connector.start()

    async def write(self, events: Sequence[StoredEvent]) -> None:
        """Publish ``events`` and wait for every acknowledgement."""
        if not events:  # nothing to acknowledge: no future would ever complete
            return
        connection = self._connector.current()
        client, inbox = connection
        replies, acknowledged = inbox.expect(len(events))
        try:
            for event, reply in zip(events, replies, strict=True):
                await client.publish(self.subject(event.stream), event.body, reply=reply,
                                     headers={"Nats-Msg-Id": event.id})
            async with asyncio.timeout(OPERATION_TIMEOUT):
                await acknowledged
        except Exception as error:  # connection loss, timeout, refusal: nothing is promised
            inbox.forget(replies)
            if isinstance(error, TimeoutError) or not client.is_connected:
                self._connector.broken(connection, str(error) or type(error).__name__)
            raise SinkError(f"JetStream publish failed: {error}") from error

    async def close(self) -> None:
        """Disconnect (draining nothing: every write already awaited its acks)."""
        await self._connector.close()
