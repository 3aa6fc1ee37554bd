"""A local durable spool in front of a remote sink (PostgreSQL, JetStream).

When the remote sink fails, events are written to a local SQLite file instead (same durability as
the embedded log: committed and fsynced before the write returns), so the answer to the client
stays truthful: a success means the event is durably stored here and will be delivered. A
background task replays the spool, oldest first, once the remote sink answers again; events are
deleted from the spool only after the remote sink acknowledged them. Delivery is at least once;
the remote sinks skip ids they already have, so a replayed event is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from splitlab.intake.sinks import Sink, StoredEvent
from splitlab.intake.sqlite_log import SQLiteSink

log = logging.getLogger(__name__)
REPLAY_BATCH = 1000


class SpoolingSink:
    """``inner`` with a local spool for when it is down; a :class:`Sink` itself."""

    def __init__(
        self, inner: Sink, spool: SQLiteSink, name: str, retry_seconds: float = 1.0,
        on_depth: Callable[[str, int], None] = lambda name, depth: None,
    ) -> None:
        self.inner = inner
        self.spool = spool
        self.name = name
        self.retry_seconds = retry_seconds
        self.on_depth = on_depth
        self._down_until = 0.0
        self._replayer: asyncio.Task[None] | None = None
        self._depth = 0
        """Spooled events: counted once at start and after each replay, added to per write (a
        count per write would scan the spool exactly while it grows)."""

    async def start(self) -> None:
        """Open the spool and try the remote sink; a remote that is down is not an error."""
        await self.spool.start()
        try:
            await self.inner.start()
        except Exception as error:  # the remote is down: spool until it returns
            log.warning("sink %s is unavailable at start, spooling: %s", self.name, error)
            self._mark_down()
        await self._recount()
        self._replayer = asyncio.create_task(self._replay_forever())

    def _mark_down(self) -> None:
        self._down_until = time.monotonic() + self.retry_seconds

    async def write(self, events: Sequence[StoredEvent]) -> None:
        """Deliver ``events`` to the remote sink, or durably spool them when it fails."""
        if time.monotonic() >= self._down_until:
            try:
                await self.inner.write(events)
                return
            except Exception as error:  # any failure of the remote: fall back to the spool
                log.warning("sink %s failed, spooling %d events: %s", self.name, len(events), error)
                self._mark_down()
        await self.spool.write(events)
        self._depth += len(events)
        self.on_depth(self.name, self._depth)

    async def _recount(self) -> None:
        self._depth = await self.spool.count()
        self.on_depth(self.name, self._depth)

    async def replay(self) -> int:
        """Deliver spooled events until the spool is empty or the remote fails; returns count."""
        delivered = 0
        try:
            while batch := await self.spool.oldest(REPLAY_BATCH):
                try:
                    await self.inner.write(batch)
                except Exception as error:  # still down; try again later
                    log.info("sink %s still unavailable: %s", self.name, error)
                    self._mark_down()
                    break
                await self.spool.forget([event.id for event in batch])
                delivered += len(batch)
                self._down_until = 0.0
        finally:
            await self._recount()
        return delivered

    async def _replay_forever(self) -> None:
        while True:
            await asyncio.sleep(self.retry_seconds)
            try:
                await self.replay()
            except Exception:  # the spool itself failed; keep the task alive and retry
                log.exception("replaying the spool of %s failed", self.name)

    async def close(self) -> None:
        """Stop replaying, close the remote sink and the spool."""
        if self._replayer is not None:
            self._replayer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replayer
        await self.inner.close()
        await self.spool.close()
