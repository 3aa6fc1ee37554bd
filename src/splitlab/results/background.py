"""Running a scheduler in the background of ``splitlab serve``: a daemon thread that builds the
scheduler on itself (opening the lake and importing the engines must not delay the service's
start) and runs it every interval. Every worker process runs one, and only the lease's holder
computes, so a thread builds its scheduler only once it has taken the lease: the others stay
without DuckDB, Arrow and the lake (about 150 MB of memory per worker process). This module
imports nothing heavy."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Runnable(Protocol):
    """What the thread runs: :class:`splitlab.results.scheduler.Scheduler`."""

    def run_once(self) -> object:
        """One run."""
        ...

    def close(self) -> None:
        """Release everything."""
        ...


class SchedulerThread:
    """Runs a scheduler every ``interval`` seconds on a daemon thread until stopped; the
    scheduler is built by ``build`` on that thread (opening the lake and importing the engines
    must not delay the service's start)."""

    def __init__(self, build: Callable[[], Runnable], interval: float,
                 claim: Callable[[], bool] = lambda: True) -> None:
        self.build = build
        self.claim = claim
        """Takes the lease for the scheduler ``build`` makes (same holder); False while another
        holds it."""
        self.scheduler: Runnable | None = None
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="splitlab-results", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if self.scheduler is None and self.claim():
                    self.scheduler = self.build()
                if self.scheduler is not None:
                    self.scheduler.run_once()
            except Exception:  # a failed run is logged; the next interval tries again
                log.exception("computing results failed")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        """Stop after the running computation (if any) and close the scheduler."""
        self._stop.set()
        self._thread.join(timeout=120)
        if self.scheduler is not None:
            self.scheduler.close()
