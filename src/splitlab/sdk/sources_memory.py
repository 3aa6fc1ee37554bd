"""An in-memory config source whose rows the application or a test can replace at runtime."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from splitlab.core.model import experiments_from_document
from splitlab.errors import ConfigError
from splitlab.sdk.config_sources import ConfigSnapshot
from splitlab.sdk.forking import renew_lock_after_fork

log = logging.getLogger("splitlab.sdk.sources")


class MemoryConfigSource:
    """A :class:`~splitlab.sdk.config_sources.ConfigSource` serving ``rows`` (Test Kitchen
    config rows), replaceable with :meth:`set_rows`.

    The constructor raises :class:`~splitlab.errors.ConfigError` on invalid rows (a programmer
    hands them over). :meth:`set_rows` replaces the snapshot atomically; invalid rows there are
    logged and the previous snapshot is kept, as a remote source would do. Versions count the
    updates (``memory-0``, ``memory-1``, ...).
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()) -> None:
        self._lock = threading.Lock()
        renew_lock_after_fork(self, "_lock")
        self._updates = 0
        self._snapshot = ConfigSnapshot(tuple(experiments_from_document(list(rows))), "memory-0")

    def load(self) -> ConfigSnapshot:
        """The current snapshot (never raises)."""
        return self._snapshot

    def set_rows(self, rows: Iterable[Mapping[str, Any]]) -> bool:
        """Replace the snapshot; ``False`` (snapshot kept) when a row is invalid."""
        try:
            experiments = tuple(experiments_from_document(list(rows)))
        except ConfigError as error:
            log.error("config update refused, keeping the previous one: %s", error)
            return False
        with self._lock:
            self._updates += 1
            self._snapshot = ConfigSnapshot(experiments, f"memory-{self._updates}")
        return True
