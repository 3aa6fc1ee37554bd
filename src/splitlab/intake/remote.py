"""What the remote sinks (PostgreSQL, JetStream) share: deadlines and a background connection.

A remote sink must never make a request wait for a server that is down or stalled. Two pieces
see to it:

- :class:`Deadlines` runs an operation for at most a given time and, past it, raises
  :class:`~splitlab.errors.SinkError` at once, cancelling the operation in the background (a
  database client may spend seconds trying to cancel a query on a server that does not answer;
  :func:`asyncio.wait_for` would wait for that).
- :class:`Connector` keeps one connection open from a background task. Writers take
  :meth:`Connector.current`, which never waits: it is the open connection or a ``SinkError``.
  A writer that finds the connection broken hands it back with :meth:`Connector.broken`; the
  task closes it and opens a new one, retrying every ``retry`` seconds while the server is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, Generic, Protocol, TypeVar

from splitlab.errors import SinkError

log = logging.getLogger(__name__)
T = TypeVar("T")
C = TypeVar("C")
OPERATION_TIMEOUT = 5.0
"""Seconds a remote sink's client gives one operation (an insert, a batch of publishes and their
acknowledgements, a connect) before it gives up on its own. The deadline a request waits for the
remote sink before its events go to the spool is shorter (``SPLITLAB_EVENTS_SINK_TIMEOUT``)."""
RETRY_SECONDS = 0.5


class Deadlines:
    """Runs operations under deadlines, keeping abandoned ones referenced until they end."""

    def __init__(self) -> None:
        self._abandoned: set[asyncio.Task[Any]] = set()

    async def run(self, work: Coroutine[Any, Any, T], seconds: float, what: str) -> T:
        """``work``'s result, or :class:`SinkError` after ``seconds`` (``work`` is then cancelled
        without waiting for it). Cancelling the caller cancels ``work``."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=seconds)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done:
            return task.result()
        self.abandon(task)
        raise SinkError(f"{what}: no answer within {seconds:g} s")

    def abandon(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` and let it finish in the background."""
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned failure is expected, not unhandled

    async def close(self) -> None:
        """Wait (briefly) for abandoned operations to finish cancelling."""
        if self._abandoned:
            await asyncio.wait(set(self._abandoned), timeout=OPERATION_TIMEOUT)


class Opener(Protocol[C]):
    """How a :class:`Connector` opens, checks and closes its sink's connections."""

    async def open(self) -> C:
        """A new, ready connection (the server is reached and set up), or raise; cancelled,
        it releases whatever it had opened."""
        ...

    def usable(self, connection: C) -> bool:
        """Whether ``connection`` still looks open (no network round trip)."""
        ...

    async def close(self, connection: C) -> None:
        """Release ``connection``; may raise (the connector ignores it)."""
        ...


class Connector(Generic[C]):
    """Keeps one connection of ``opener`` open from a background task (see the module doc)."""

    def __init__(self, opener: Opener[C], what: str, retry: float = RETRY_SECONDS) -> None:
        self.opener = opener
        self.what = what
        self.retry = retry
        self._connection: C | None = None
        self._wake = asyncio.Event()
        self._tried = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._deadlines = Deadlines()
        self._closing: set[asyncio.Task[None]] = set()
        self.last_error = ""

    async def start(self, wait: float = OPERATION_TIMEOUT) -> None:
        """Start the background task and wait for its first attempt to connect, at most ``wait``
        seconds (never raises: a server that is down is reached later)."""
        self._task = asyncio.create_task(self._keep_open())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._tried.wait()

    def current(self) -> C:
        """The open connection, without waiting; :class:`SinkError` when there is none."""
        connection = self._connection
        if connection is None or not self.opener.usable(connection):
            self._wake.set()
            raise SinkError(f"{self.what} is not connected ({self.last_error or 'connecting'})")
        return connection

    def broken(self, connection: C, reason: str) -> None:
        """``connection`` failed: close it in the background and open a new one."""
        if self._connection is connection:
            self._connection = None
            self.last_error = reason
            self._dispose(connection)
            self._wake.set()

    def _dispose(self, connection: C) -> None:
        task = asyncio.ensure_future(self._close_quietly(connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_quietly(self, connection: C) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(OPERATION_TIMEOUT):
                await self.opener.close(connection)

    async def _keep_open(self) -> None:
        while True:
            connection = self._connection
            if connection is not None and not self.opener.usable(connection):
                self.broken(connection, "connection lost")
            if self._connection is None:
                try:
                    self._connection = await self._deadlines.run(
                        self.opener.open(), OPERATION_TIMEOUT, f"connecting to {self.what}")
                    log.info("%s connected", self.what)
                except Exception as error:  # down or unreachable: try again after a pause
                    if str(error) != self.last_error:
                        log.warning("%s is unavailable: %s", self.what, error)
                    self.last_error = str(error)
                self._tried.set()
            self._wake.clear()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.retry):
                    await self._wake.wait()
            if self._connection is None:  # do not hammer a server that refuses at once
                await asyncio.sleep(self.retry)

    async def close(self) -> None:
        """Stop the background task and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            await self._close_quietly(self._connection)
            self._connection = None
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=OPERATION_TIMEOUT)
        await self._deadlines.close()
