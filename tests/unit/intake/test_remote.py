"""Deadlines and the background connector of the remote sinks, with in-memory stand-ins."""

from __future__ import annotations

import asyncio
import time

import pytest

from splitlab.errors import SinkError
from splitlab.intake.remote import Connector, Deadlines


def test_a_deadline_answers_on_time_even_when_cancelling_takes_long() -> None:
    """The work ignores its first cancellation for a while (as a database client trying to
    cancel a query on a stalled server does): the caller is not held for it."""
    finished: list[str] = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.sleep(0.5))
            finished.append("cancelled")
            raise

    async def main() -> float:
        deadlines = Deadlines()
        started = time.monotonic()
        with pytest.raises(SinkError, match=r"no answer within 0\.05 s"):
            await deadlines.run(stubborn(), 0.05, "stubborn")
        elapsed = time.monotonic() - started
        assert await deadlines.run(asyncio.sleep(0, "ok"), 1, "quick") == "ok"
        await deadlines.close()
        return elapsed

    assert asyncio.run(main()) < 0.4
    assert finished == ["cancelled"]


class FakeServer:
    """Opens "connections" (dicts) while ``up``; a connection breaks when its ``open`` is False."""

    def __init__(self) -> None:
        self.up = False
        self.hang = False
        self.opened = 0
        self.closed = 0

    async def open(self) -> dict[str, bool]:
        if self.hang:
            await asyncio.sleep(60)
        if not self.up:
            raise ConnectionRefusedError("connection refused")
        self.opened += 1
        return {"open": True}

    def usable(self, connection: dict[str, bool]) -> bool:
        return connection["open"]

    async def close(self, connection: dict[str, bool]) -> None:
        connection["open"] = False
        self.closed += 1


def test_connector_never_makes_a_writer_wait_and_reconnects_in_the_background() -> None:
    async def main() -> None:
        server = FakeServer()
        connector = Connector(server, "fake", retry=0.02)
        started = time.monotonic()
        await connector.start(wait=0.1)  # down at start: no error, a bounded wait
        assert time.monotonic() - started < 1
        with pytest.raises(SinkError, match=r"fake is not connected.*refused"):
            connector.current()
        server.up = True
        for _ in range(200):
            await asyncio.sleep(0.01)
            if server.opened:
                break
        first = connector.current()
        connector.broken(first, "write timed out")
        with pytest.raises(SinkError, match="write timed out"):
            connector.current()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if server.opened == 2:
                break
        assert connector.current() is not first and server.closed == 1
        server.hang = True  # a stalled server: connects are abandoned, writers still not held
        connector.broken(connector.current(), "stalled")
        started = time.monotonic()
        with pytest.raises(SinkError):
            connector.current()
        assert time.monotonic() - started < 0.1
        await connector.close()

    asyncio.run(main())
