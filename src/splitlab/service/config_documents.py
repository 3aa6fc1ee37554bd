"""The read side's cache: each config document serialized once, kept as bytes and gzip bytes.

A document is rebuilt when this process writes, when another process has written and when an
experiment starts or ends by the clock. Other processes are noticed two ways: worker processes on
the same host replace a small signal file in the data directory after each write (a reader pays one
``stat`` per request, so it reads its own writes across workers), and the registry's change counter
is polled at most every ``poll_seconds`` (for writers on other hosts sharing PostgreSQL).
A request for a cached document costs a ``stat`` and a dict lookup, and no database access.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from starlette.concurrency import run_in_threadpool

from splitlab.registry import edge, views
from splitlab.registry.store import Registry
from splitlab.service.api_support import etag_matches

Key = tuple[str, str, str]
"""(kind, format, authority)."""


@dataclass(frozen=True, slots=True)
class Document:
    """One serialized response: identity and gzip bodies, each with its own strong ETag."""

    body: bytes
    gzip_body: bytes
    etag: str
    gzip_etag: str
    counter: int
    valid_until: datetime | None

    def matches(self, if_none_match: str) -> bool:
        """Whether an ``If-None-Match`` value names either representation (or is ``*``)."""
        return etag_matches(if_none_match, self.etag, self.gzip_etag)


def build_body(registry: Registry, key: Key, now: datetime) -> tuple[bytes, datetime | None]:
    """Serialize the document for ``key`` from the store (blocking; run it in a thread)."""
    kind, fmt, authority = key
    rows = [record.row for record in registry.records(kind)]
    until = views.next_boundary(rows, now)
    if fmt == "analytics":
        history = registry.all_history(kind)
        content: object = [views.analytics_row(r, history.get(r["name"], []), now) for r in rows]
    elif authority == "varnish":
        content = edge.edge_document(views.active(rows, now), registry.sites)
    else:
        content = views.active(rows, now)
    return orjson.dumps(content), until


class ChangeSignal:
    """A file in the data directory, replaced after every write, that readers ``stat``: the
    worker processes of one host see each other's writes at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def stamp(self) -> tuple[int, int]:
        """What identifies the latest write (inode and mtime of the file)."""
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return (0, 0)
        return (found.st_ino, found.st_mtime_ns)

    def notify(self) -> None:
        """Announce a write (a new inode: visible to every reader's ``stat``)."""
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}")
        temporary.write_bytes(b"")
        os.replace(temporary, self.path)


class ChangeWatch:
    """One reader's view of :class:`ChangeSignal`: :meth:`due` says when to look at the
    registry's change counter — the signal moved, or ``poll_seconds`` passed (writers on other
    hosts sharing PostgreSQL cannot touch this host's file)."""

    def __init__(self, signal: ChangeSignal, poll_seconds: float = 0.5) -> None:
        self.signal = signal
        self.poll_seconds = poll_seconds
        self.seen = signal.stamp()
        self.checked = float("-inf")

    def due(self) -> bool:
        """Whether the registry may have changed since the last time this returned true."""
        stamp = self.signal.stamp()
        now = time.monotonic()
        if stamp == self.seen and now - self.checked < self.poll_seconds:
            return False
        self.seen = stamp
        self.checked = now
        return True


class DocumentCache:
    """Cached config documents for one registry, safe to share by the requests of a process."""

    def __init__(self, registry: Registry, signal: ChangeSignal) -> None:
        self.registry = registry
        self.signal = signal
        self.watch = ChangeWatch(signal)
        self.documents: dict[Key, Document] = {}
        self.counter = -1
        self.lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget every document and tell the other workers (this process just wrote)."""
        self.documents = {}
        self.signal.notify()

    async def get(self, key: Key) -> Document:
        """The current document for ``key``, rebuilt only when something changed."""
        if self.watch.due():
            await self._poll()
        document = self.documents.get(key)
        now = self.registry.clock()
        if document is not None and (document.valid_until is None or now < document.valid_until):
            return document
        async with self.lock:  # one rebuild at a time: no stampede on the database
            document = self.documents.get(key)
            if document is not None and (document.valid_until is None
                                         or now < document.valid_until):
                return document
            counter = self.counter
            body, until = await run_in_threadpool(build_body, self.registry, key, now)
            digest = hashlib.sha256(body).hexdigest()[:24]
            document = Document(body=body, gzip_body=gzip.compress(body, 6, mtime=0),
                                etag=f'"{digest}"', gzip_etag=f'"{digest}-gzip"',
                                counter=counter, valid_until=until)
            if counter == self.counter:
                self.documents[key] = document
            return document

    async def _poll(self) -> None:
        counter = await run_in_threadpool(self.registry.change_counter)
        if counter != self.counter:
            self.documents = {}
            self.counter = counter
