"""Where accepted events go: the :class:`Sink` seam, an in-memory sink and group commit.

A sink's ``write`` returns only once every event it was given is durably stored (committed,
acknowledged); otherwise it raises :class:`~splitlab.errors.SinkError`. Writing an event whose
``id`` (``meta.id``) is already stored is a no-op, so a client's retry never duplicates it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple, Protocol

from splitlab.errors import SinkError


class StoredEvent(NamedTuple):
    """An accepted event as stored: ``meta.id``, stream, receive time and the JSON bytes (a
    named tuple: the intake makes one per event, and a tuple is the cheapest to make)."""

    id: str
    stream: str
    dt: str
    body: bytes


class Sink(Protocol):
    """A durable destination for events."""

    async def start(self) -> None:
        """Connect / open; a remote sink that is down must not make this raise."""
        ...

    async def write(self, events: Sequence[StoredEvent]) -> None:
        """Store ``events`` durably (duplicate ids are skipped) or raise :class:`SinkError`."""
        ...

    async def close(self) -> None:
        """Flush and release resources; must not raise."""
        ...


class MemorySink:
    """An in-memory sink (tests, demos): keeps events in order, skipping duplicate ids.

    Setting ``available = False`` makes it refuse writes the way a down server would; a positive
    ``delay`` makes each write wait that many seconds first, the way a stalled server would.
    """

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.available = True
        self.delay = 0.0
        self._ids: set[str] = set()

    async def start(self) -> None:
        """Nothing to open."""

    async def write(self, events: Sequence[StoredEvent]) -> None:
        """Append the events not stored yet."""
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if not self.available:
            raise SinkError("memory sink is unavailable")
        for event in events:
            if event.id not in self._ids:
                self._ids.add(event.id)
                self.events.append(event)

    async def close(self) -> None:
        """Nothing to close."""


class GroupCommit:
    """Coalesces concurrent writes into one storage transaction (group commit).

    While one commit runs, later callers queue up; the next commit takes them all at once. Each
    caller's ``submit`` returns when the commit holding its events has succeeded, or raises the
    commit's error. This turns N concurrent fsyncs into one without delaying a lone writer.
    """

    def __init__(
        self, commit: Callable[[list[StoredEvent]], Awaitable[None]], max_events: int = 20_000
    ) -> None:
        self._commit = commit
        self._max_events = max_events
        self._pending: list[tuple[Sequence[StoredEvent], asyncio.Future[None]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, events: Sequence[StoredEvent]) -> None:
        """Commit ``events`` (together with whatever else is waiting)."""
        if not events:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((events, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        await future

    async def _run(self) -> None:
        while self._pending:
            group: list[tuple[Sequence[StoredEvent], asyncio.Future[None]]] = []
            size = 0
            while self._pending and (
                not group or size + len(self._pending[0][0]) <= self._max_events
            ):
                item = self._pending.pop(0)
                if item[1].done():  # its writer stopped waiting (and spooled the events)
                    continue
                group.append(item)
                size += len(item[0])
            if not group:
                continue
            batch = [event for events, _ in group for event in events]
            try:
                await self._commit(batch)
            except Exception as error:  # every waiter learns the commit failed
                failure = error if isinstance(error, SinkError) else SinkError(str(error))
                for _, future in group:
                    if not future.done():
                        future.set_exception(failure)
            else:
                for _, future in group:
                    if not future.done():
                        future.set_result(None)

    async def drain(self) -> None:
        """Wait for the running commit (if any) to finish."""
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)
