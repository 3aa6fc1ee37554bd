"""Event senders: where the SDK's events go.

:class:`EventSender` is the seam. :class:`MemoryEventSender` keeps events in a list (for tests,
the application's own ones included). :class:`HttpEventSender` posts JSON arrays to an
EventGate-compatible intake (``POST /v1/events``) from a background thread, so that a web
request never waits for the intake and a script's events still leave before it exits.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from splitlab.sdk.forking import renew_lock_after_fork
from splitlab.sdk.metrics import Metrics

Event = dict[str, Any]
log = logging.getLogger("splitlab.sdk.events")


class EventSender(Protocol):
    """Takes events; never blocks the caller for long and never raises into it."""

    def send(self, event: Mapping[str, Any]) -> None:
        """Queue one event (a JSON-serializable mapping) for delivery."""

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver what is queued; ``True`` when nothing is left within ``timeout`` seconds."""

    def close(self, timeout: float = 5.0) -> None:
        """Flush, then stop; later events are dropped."""


class MemoryEventSender:
    """Keeps every event in :attr:`events`, in order (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()
        renew_lock_after_fork(self, "_lock")

    def send(self, event: Mapping[str, Any]) -> None:
        """Append a copy of ``event``."""
        with self._lock:
            self.events.append(dict(event))

    def flush(self, timeout: float = 5.0) -> bool:
        """Nothing to deliver: always ``True``."""
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Nothing to stop."""


@dataclass(frozen=True, slots=True)
class SenderOptions:
    """How :class:`HttpEventSender` batches and retries.

    ``queue_size`` bounds memory (new events are dropped, and counted, when it is full);
    ``batch_size`` events go in one POST; ``retries`` attempts follow a failed one, waiting
    ``backoff * 2**n`` seconds (capped at 30); ``timeout`` is per HTTP request;
    ``exit_timeout`` is how long interpreter exit waits for delivery.
    """

    queue_size: int = 10_000
    batch_size: int = 100
    retries: int = 5
    backoff: float = 0.5
    timeout: float = 5.0
    exit_timeout: float = 5.0


_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_BACKOFF = 30.0
_WARN_EVERY = 10.0
"""Seconds between two warnings about dropped events (a down intake must not flood the log)."""


class _Worker:
    """Per-process state: a forked child gets a fresh one (the parent's thread did not survive)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.cond = threading.Condition()
        self.queue: deque[Mapping[str, Any]] = deque()
        self.in_flight = 0
        self.thread: threading.Thread | None = None


class HttpEventSender:
    """Batches events and POSTs them as JSON arrays to ``url`` from a background thread.

    Never blocks and never raises into the host: a full queue drops the new event, an intake
    that fails (connection error, 5xx, 429) is retried with exponential backoff, and events it
    refuses (other 4xx) are dropped and logged. A 207 means the intake kept some events and
    routed the rest to its error stream, so nothing is resent. Pending events are flushed at
    interpreter exit. Fork-safe: a child process drops the parent's queue (the parent still
    delivers it) and starts its own thread on first use.
    """

    def __init__(
        self,
        url: str,
        options: SenderOptions | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise TypeError(f"HttpEventSender needs an http(s) URL, got {url!r}")
        self.url = url
        self.options = options or SenderOptions()
        self.metrics = metrics or Metrics()
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._worker = _Worker()
        self._closed = False
        self._warned_at = -_WARN_EVERY
        self._at_exit = _exit_hook(weakref.ref(self))
        atexit.register(self._at_exit)
        os.register_at_fork(after_in_child=_fork_hook(weakref.ref(self)))

    def send(self, event: Mapping[str, Any]) -> None:
        """Queue ``event``; dropped (and counted) when closed or the queue is full."""
        if self._closed:
            self._dropped("closed")
            return
        worker = self._current()
        with worker.cond:
            if len(worker.queue) >= self.options.queue_size:
                full = True
            else:
                full = False
                worker.queue.append(event)
                self._ensure_thread(worker)
                worker.cond.notify()
        if full:
            self._dropped("queue_full")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event is delivered or given up; ``False`` on timeout."""
        worker = self._current()
        deadline = time.monotonic() + timeout
        with worker.cond:
            if worker.queue and not self._ensure_thread(worker):
                return self._drain_here(worker, deadline)
            worker.cond.notify_all()
            while worker.queue or worker.in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                worker.cond.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Flush for up to ``timeout`` seconds, then refuse new events."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        atexit.unregister(self._at_exit)
        worker = self._current()
        with worker.cond:
            dropped = len(worker.queue)
            worker.queue.clear()
            worker.cond.notify_all()
        if dropped:
            self._dropped("closed", dropped)

    def _current(self) -> _Worker:
        worker = self._worker
        if worker.pid != os.getpid():  # fork without the hook having run (should not happen)
            self._reset_after_fork()
            worker = self._worker
        return worker

    def _reset_after_fork(self) -> None:
        self._worker = _Worker()

    def _thread_alive(self, worker: _Worker) -> bool:
        return worker.thread is not None and worker.thread.is_alive()

    def _ensure_thread(self, worker: _Worker) -> bool:
        """Start the worker thread if needed (caller holds ``worker.cond``); ``False`` when the
        interpreter is shutting down and no thread can be started."""
        if self._thread_alive(worker):
            return True
        thread = threading.Thread(
            target=self._run, args=(worker,), name="splitlab-events", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            return False
        worker.thread = thread
        return True

    def _run(self, worker: _Worker) -> None:
        while True:
            with worker.cond:
                while not worker.queue:
                    if self._closed:
                        return
                    worker.cond.wait(1.0)
                batch = self._take(worker)
            try:
                self._deliver(batch, worker)
            finally:
                with worker.cond:
                    worker.in_flight -= len(batch)
                    worker.cond.notify_all()

    def _take(self, worker: _Worker) -> list[Mapping[str, Any]]:
        count = min(len(worker.queue), self.options.batch_size)
        batch = [worker.queue.popleft() for _ in range(count)]
        worker.in_flight += count
        return batch

    def _drain_here(self, worker: _Worker, deadline: float) -> bool:
        """Deliver in the calling thread (caller holds ``worker.cond``): used at shutdown."""
        while worker.queue and time.monotonic() < deadline:
            batch = self._take(worker)
            try:
                self._deliver(batch, worker, deadline)
            finally:
                worker.in_flight -= len(batch)
        return not worker.queue

    def _deliver(
        self, batch: list[Mapping[str, Any]], worker: _Worker, deadline: float | None = None
    ) -> None:
        body, bad = _encode(batch)
        if bad:
            self._dropped("unserializable", bad)
        if body is None:
            return
        count = len(batch) - bad
        for attempt in range(self.options.retries + 1):
            outcome = self._post(body)
            if outcome == "ok":
                self.metrics.events_sent(count)
                return
            if outcome == "refused":
                self._dropped("refused", count)
                return
            if attempt == self.options.retries:
                break
            self.metrics.send_retry()
            wait = min(self.options.backoff * 2**attempt, _MAX_BACKOFF)
            if deadline is not None and time.monotonic() + wait > deadline:
                break
            with worker.cond:  # woken early by close(): the retry still happens, sooner
                worker.cond.wait(wait)
        self._dropped("intake_unavailable", count)

    def _post(self, body: bytes) -> str:
        """POST one batch: ``ok``, ``refused`` (do not resend) or ``retry``."""
        request = urllib.request.Request(self.url, body, self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.options.timeout) as response:
                status = int(response.status)
        except urllib.error.HTTPError as error:
            status = error.code
        except (OSError, ValueError) as error:
            self._warn("event intake %s unreachable: %s", self.url, error)
            return "retry"
        if status in _RETRYABLE:
            self._warn("event intake %s answered %d; will retry", self.url, status)
            return "retry"
        if 200 <= status < 300:
            return "ok"
        self._warn("event intake %s refused a batch with %d; dropped", self.url, status)
        return "refused"

    def _dropped(self, reason: str, count: int = 1) -> None:
        self.metrics.events_dropped(reason, count)
        self._warn("dropped %d event(s): %s", count, reason)

    def _warn(self, message: str, *args: object) -> None:
        """Log a warning, at most one per ``_WARN_EVERY`` seconds (the metrics count them all)."""
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning(message, *args)


def _encode(batch: list[Mapping[str, Any]]) -> tuple[bytes | None, int]:
    """The batch as a JSON array, leaving out events that cannot be serialized (one bad event
    must not cost the others): ``(body or None when nothing is left, number left out)``."""
    try:
        return json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), 0
    except (TypeError, ValueError):
        pass
    parts: list[str] = []
    for event in batch:
        try:
            parts.append(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
        except (TypeError, ValueError) as error:
            log.error("event is not JSON-serializable, dropped: %s", error)
    bad = len(batch) - len(parts)
    return ("[" + ",".join(parts) + "]").encode("utf-8") if parts else None, bad


def _exit_hook(ref: weakref.ref[HttpEventSender]) -> Callable[[], None]:
    def flush_at_exit() -> None:
        sender = ref()
        if sender is not None and not sender._closed:
            sender.close(sender.options.exit_timeout)

    return flush_at_exit


def _fork_hook(ref: weakref.ref[HttpEventSender]) -> Callable[[], None]:
    def reset_in_child() -> None:
        sender = ref()
        if sender is not None:
            sender._reset_after_fork()

    return reset_in_child
