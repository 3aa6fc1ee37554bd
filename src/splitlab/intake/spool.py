"""A local durable spool in front of a remote sink (PostgreSQL, JetStream).

When the remote sink fails or does not answer within ``deadline`` seconds, the events are written
to a local SQLite file instead (same durability as the embedded log: committed and fsynced before
the write returns), so the answer to the client stays truthful and prompt: a success means the
event is durably stored here and will be delivered. After a failure, writes go straight to the
spool (the remote is not asked again while it is known to be down) until the replayer has
delivered a batch to it. The replayer sends the spool, oldest first, in batches, and deletes
events only after the remote sink acknowledged them; one process at a time replays a spool file
(an advisory lock), so several workers sharing it do not send the same events twice. The replayer
stamps the lock file with the time of each delivered batch: a process that finds the lock taken
reads the stamp, and sends its writes to the remote again once a batch was delivered after its
own failure (otherwise it would spool everything until the spool is empty, which under load
never happens while it keeps feeding the spool).
Delivery is at least once: a write abandoned at its deadline may still land, and a replay cut
short by a crash is sent again; the remote sinks skip ids they already have, so each event is
stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence

from splitlab.intake.remote import OPERATION_TIMEOUT, Deadlines
from splitlab.intake.sinks import Sink, StoredEvent
from splitlab.intake.sqlite_log import SQLiteSink

log = logging.getLogger(__name__)
REPLAY_BATCH = 2000
DEFAULT_DEADLINE = 0.5
DEPTH_INTERVAL = 0.25
REPLAY_DEADLINE = 2 * OPERATION_TIMEOUT


class SpoolingSink:
    """``inner`` with a local spool for when it is down or slow; a :class:`Sink` itself."""

    def __init__(
        self, inner: Sink, spool: SQLiteSink, name: str, retry_seconds: float = 1.0,
        deadline: float = DEFAULT_DEADLINE,
        on_depth: Callable[[str, int], None] = lambda name, depth: None,
    ) -> None:
        self.inner = inner
        self.spool = spool
        self.name = name
        self.retry_seconds = retry_seconds
        self.deadline = deadline
        self.on_depth = on_depth
        self.down = False
        """Whether writes bypass the remote sink (set by a failure, cleared by a replay)."""
        self._down_since = 0.0  # time.time() of the failure that set ``down``
        self._deadlines = Deadlines()
        self._depth = 0
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._replay_lock = spool.path.with_name(spool.path.name + ".replay")

    async def start(self) -> None:
        """Open the spool, start the remote sink (which must not raise when it is down), the
        replayer and the depth gauge."""
        await self.spool.start()
        with open(self._replay_lock, "ab"):  # exists from now on, its stamp left as it was
            pass
        await self.inner.start()
        self._changed.set()
        self._tasks = [asyncio.create_task(self._replay_forever()),
                       asyncio.create_task(self._report_depth())]

    async def write(self, events: Sequence[StoredEvent]) -> None:
        """Deliver ``events`` to the remote sink within the deadline, else durably spool them."""
        if not self.down:
            try:
                await self._deadlines.run(self.inner.write(events), self.deadline,
                                          f"sink {self.name}")
                return
            except Exception as error:  # any failure of the remote: fall back to the spool
                if not self.down:
                    log.warning("sink %s failed, spooling: %s", self.name, error)
                self._went_down()
        await self.spool.write(events)
        self._moved(len(events))

    def _moved(self, count: int) -> None:
        """Events entered (``count`` > 0) or left the spool: report it now, recount soon."""
        self._depth = max(0, self._depth + count)
        self.on_depth(self.name, self._depth)
        self._changed.set()

    async def _recount(self) -> None:
        self._depth = await self.spool.count()
        self.on_depth(self.name, self._depth)

    async def _report_depth(self) -> None:
        """Recount the spool after changes, at most every ``DEPTH_INTERVAL`` seconds: the file
        may be shared with other processes, whose writes and replays this one does not see."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._recount()
            except Exception:  # the spool is closing or failed; the next change retries
                log.debug("counting the spool of %s failed", self.name, exc_info=True)
            await asyncio.sleep(DEPTH_INTERVAL)

    def _went_down(self) -> None:
        self.down = True
        self._down_since = time.time()

    async def replay(self) -> int:
        """Deliver spooled events until the spool is empty or the remote fails; returns count.

        Does nothing (returns 0) while another process replays the same spool file, except
        clearing ``down`` when that process delivered a batch since this one's failure.
        """
        delivered = 0
        with self._exclusive() as mine:
            if not mine:
                if self.down and self._delivered_since_down():
                    self.down = False
                return 0
            while batch := await self.spool.oldest(REPLAY_BATCH):
                try:
                    await self._deadlines.run(self.inner.write(batch), REPLAY_DEADLINE,
                                              f"replay to sink {self.name}")
                except Exception as error:  # still down; try again later
                    log.info("sink %s still unavailable: %s", self.name, error)
                    self._went_down()
                    return delivered
                now = time.time()
                os.utime(self._replay_lock, (now, now))  # tells the other processes (see doc)
                await self.spool.forget([event.id for event in batch])
                delivered += len(batch)
                self.down = False  # the remote answers again: live writes go to it
                self._moved(-len(batch))
            self.down = False
        return delivered

    def _delivered_since_down(self) -> bool:
        """Whether the replay lock's stamp says a batch was delivered after ``down`` was set."""
        try:
            return self._replay_lock.stat().st_mtime > self._down_since
        except OSError:
            return False

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[bool]:
        """Hold the spool's replay lock if no other process does (yields whether it is held)."""
        with open(self._replay_lock, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    async def _replay_forever(self) -> None:
        while True:
            await asyncio.sleep(self.retry_seconds)
            try:
                await self.replay()
            except Exception:  # the spool itself failed; keep the task alive and retry
                log.exception("replaying the spool of %s failed", self.name)

    async def close(self) -> None:
        """Stop replaying, close the remote sink and the spool."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._deadlines.close()
        await self.inner.close()
        with contextlib.suppress(Exception):  # leave the gauge true when the spool still opens
            await self._recount()
        await self.spool.close()
