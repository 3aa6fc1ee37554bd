"""Where an application gets its experiment configs: a static list, a file, or the config API.

Standard library only (applications embed the SDK). A source never raises into the host
application for a bad or missing config: :meth:`ConfigSource.load` returns the last good
snapshot (``stale`` true, ``error`` set) or, before any good one, an empty snapshot with ``error``.
Programmer misuse (wrong argument types) still raises ``TypeError``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from splitlab.core.model import Experiment, canonical_json, experiments_from_document
from splitlab.errors import ConfigError
from splitlab.sdk.forking import renew_lock_after_fork

log = logging.getLogger("splitlab.sdk.config")


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """The experiments in force and the version they came with (an ETag or a content digest).

    ``stale`` means the source could not refresh and this is the last good config; ``error``
    says why. An empty snapshot with an ``error`` means no good config was ever loaded.
    """

    experiments: tuple[Experiment, ...]
    version: str
    stale: bool = False
    error: str | None = None


EMPTY_VERSION = ""


class ConfigSource(Protocol):
    """Anything that yields the current experiments. ``load`` is called often (per request):
    implementations make it cheap and never raise for bad data."""

    def load(self) -> ConfigSnapshot:
        """The current snapshot."""
        ...


def _digest(experiments: Sequence[Experiment]) -> str:
    rows = [e.to_config() for e in experiments]
    return hashlib.sha256(canonical_json(rows).encode("utf-8")).hexdigest()[:16]


def _snapshot(document: object, version: str | None = None) -> ConfigSnapshot:
    """Validate a config document (raises :class:`ConfigError`); the version defaults to a
    digest of the experiments, whatever the document's shape."""
    experiments = tuple(experiments_from_document(document))
    return ConfigSnapshot(experiments, version or _digest(experiments))


class StaticConfigSource:
    """A fixed config: rows (or ``{"experiments": rows}``) given in code. Validated at once:
    a bad row raises :class:`ConfigError` here, where the programmer wrote it."""

    def __init__(self, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> None:
        if not isinstance(rows, (Sequence, Mapping)) or isinstance(rows, (str, bytes)):
            raise TypeError("rows must be a list of config rows or {'experiments': [...]}")
        document: object = list(rows) if isinstance(rows, Sequence) else dict(rows)
        self._snapshot = _snapshot(document)

    def load(self) -> ConfigSnapshot:
        """The config given at construction."""
        return self._snapshot


class FileConfigSource:
    """A JSON file in the config API's format, re-read when it changes (size or mtime).

    A missing or invalid file keeps the last good config (logged once per change).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._signature: tuple[int, int] | None = None
        self._good: ConfigSnapshot | None = None
        self._current = ConfigSnapshot((), EMPTY_VERSION, error="not loaded yet")
        self._lock = threading.Lock()
        renew_lock_after_fork(self, "_lock")  # a fork mid-fetch must not leave it held

    def load(self) -> ConfigSnapshot:
        """The file's config as of its last change."""
        try:
            found = self.path.stat()
            signature: tuple[int, int] | None = (found.st_mtime_ns, found.st_size)
        except OSError:
            signature = None
        if signature == self._signature and self._signature is not None:
            return self._current
        with self._lock:
            if signature != self._signature or signature is None:
                self._signature = signature
                self._current = self._read()
            return self._current

    def _read(self) -> ConfigSnapshot:
        try:
            document = json.loads(self.path.read_bytes())
            self._good = _snapshot(document)
            return self._good
        except (OSError, ValueError) as error:
            reason = f"{self.path}: {error}"
            log.warning("keeping the last good experiment config: %s", reason)
            if self._good is None:
                return ConfigSnapshot((), EMPTY_VERSION, error=reason)
            return replace(self._good, stale=True, error=reason)


Clock = Callable[[], float]


class HttpConfigSource:
    """The config API (``GET /api/v1/experiments``), polled at most every ``max_age`` seconds
    with ``If-None-Match``.

    - a failed fetch (timeout, HTTP error, invalid document) keeps the last good config, and is
      itself remembered for ``failure_ttl`` seconds so an outage does not become a stampede;
    - with ``cache_file``, every good config is also written there (atomically) and read back
      when the process starts during an outage;
    - concurrent callers never fetch twice at once: those who find a fetch under way get the
      current snapshot.
    """

    def __init__(self, url: str, *, timeout: float = 2.0, max_age: float = 10.0,
                 failure_ttl: float = 5.0, cache_file: str | os.PathLike[str] | None = None,
                 clock: Clock = time.monotonic) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise TypeError(f"url must be an http(s) URL string, got {url!r}")
        self.url = url
        self.timeout = timeout
        self.max_age = max_age
        self.failure_ttl = failure_ttl
        self.cache_file = Path(cache_file) if cache_file is not None else None
        self.clock = clock
        self._etag: str | None = None
        self._good: ConfigSnapshot | None = None
        self._current = ConfigSnapshot((), EMPTY_VERSION, error="not loaded yet")
        self._next_fetch = float("-inf")
        self._lock = threading.Lock()
        renew_lock_after_fork(self, "_lock")  # a fork mid-fetch must not leave it held
        self._read_cache_file()

    def load(self) -> ConfigSnapshot:
        """The current snapshot, refreshed when ``max_age`` (or ``failure_ttl``) has passed."""
        if self.clock() < self._next_fetch:
            return self._current
        if not self._lock.acquire(blocking=self._good is None):
            return self._current  # another thread is fetching; serve what we have
        try:
            if self.clock() >= self._next_fetch:
                self._refresh()
            return self._current
        finally:
            self._lock.release()

    def _refresh(self) -> None:
        try:
            fetched = self._fetch()
        except (OSError, ValueError, http.client.HTTPException) as error:
            reason = f"GET {self.url}: {error}"
            log.warning("keeping the last good experiment config: %s", reason)
            self._next_fetch = self.clock() + self.failure_ttl
            base = self._good or ConfigSnapshot((), EMPTY_VERSION)
            self._current = replace(base, stale=True, error=reason)
            return
        self._next_fetch = self.clock() + self.max_age
        if fetched is not None:
            self._good, document = fetched
            self._write_cache_file(self._good, document)
        elif self._good is None:  # 304 without a config of our own cannot happen; be safe
            self._etag = None
            self._next_fetch = float("-inf")
            return
        self._current = self._good

    def _fetch(self) -> tuple[ConfigSnapshot, object] | None:
        """A new snapshot and its document, or ``None`` on 304. Raises on any failure."""
        request = urllib.request.Request(self.url, headers={"Accept": "application/json",
                                                            "Accept-Encoding": "gzip"})
        if self._etag and self._good is not None:
            request.add_header("If-None-Match", self._etag)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
                if response.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                etag = response.headers.get("ETag")
        except urllib.error.HTTPError as error:
            if error.code == 304:
                return None
            raise
        document = json.loads(body)
        snapshot = _snapshot(document, etag)
        self._etag = etag
        return snapshot, document

    def _write_cache_file(self, snapshot: ConfigSnapshot, document: object) -> None:
        if self.cache_file is None:
            return
        record = {"version": snapshot.version, "etag": self._etag, "document": document}
        temporary = self.cache_file.with_name(f".{self.cache_file.name}.{os.getpid()}")
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(record), encoding="utf-8")
            os.replace(temporary, self.cache_file)
        except OSError as error:
            log.warning("cannot write the config cache file %s: %s", self.cache_file, error)

    def _read_cache_file(self) -> None:
        if self.cache_file is None or not self.cache_file.exists():
            return
        try:
            record = json.loads(self.cache_file.read_bytes())
            self._good = _snapshot(record["document"], str(record["version"]))
        except (OSError, ValueError, KeyError, TypeError, ConfigError) as error:
            log.warning("ignoring the config cache file %s: %s", self.cache_file, error)
            return
        self._etag = record.get("etag")
        self._current = replace(self._good, stale=True, error="from the cache file")
