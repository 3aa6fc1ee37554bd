"""The in-service scheduler thread: only the thread that took the lease builds its scheduler
(the others stay without DuckDB, Arrow and the lake), and another takes over when it stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from splitlab.registry.store import Registry
from splitlab.results.background import SchedulerThread
from splitlab.results.store import LEASE, ResultsStore, holder_name


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class Recorded:
    """A scheduler that holds the lease as its thread's holder, as the real one does."""

    def __init__(self, store: ResultsStore, holder: str, runs: list[str], name: str) -> None:
        self.store, self.holder, self.runs, self.name = store, holder, runs, name

    def run_once(self) -> None:
        if self.store.claim(self.holder):
            self.runs.append(self.name)

    def close(self) -> None:
        self.store.release(LEASE, self.holder)


def test_only_the_lease_holder_builds_and_another_takes_over_when_it_stops(
        registry: Registry) -> None:
    store = ResultsStore(registry.engine, registry.tables.prefix)
    built: list[str] = []
    runs: list[str] = []
    lock = threading.Lock()

    def thread(name: str) -> SchedulerThread:
        holder = holder_name()

        def build() -> Recorded:
            with lock:
                built.append(name)
            return Recorded(store, holder, runs, name)

        return SchedulerThread(build, 0.01,
                               lambda: store.claim(holder))

    first, second = thread("first"), thread("second")
    first.start()
    wait_for(lambda: "first" in runs)
    second.start()
    time.sleep(0.3)  # about 30 intervals of the second thread
    assert built == ["first"] and second.scheduler is None and "second" not in runs
    first.stop()  # its scheduler gives the lease up
    wait_for(lambda: "second" in runs)
    assert built == ["first", "second"]
    second.stop()
