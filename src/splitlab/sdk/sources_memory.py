"""An in-memory config source: rows given by the application or a test, replaceable at runtime."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from splitlab.core.model import Experiment, experiments_from_document
from splitlab.errors import ConfigError
from splitlab.sdk.forking import renew_lock_after_fork

log = logging.getLogger("splitlab.sdk.sources")


class MemoryConfigSource:
    """Serves the experiments built from ``rows`` (Test Kitchen config rows).

    The constructor raises :class:`~splitlab.errors.ConfigError` on invalid rows (a programmer
    hands them over). :meth:`set_rows` replaces the snapshot atomically; invalid rows there are
    logged and the previous snapshot is kept, as a remote source would do. The same sequence
    object is returned until the rows change, so clients can cache per snapshot.
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()) -> None:
        self._lock = threading.Lock()
        renew_lock_after_fork(self, "_lock")
        self._snapshot: tuple[Experiment, ...] = tuple(experiments_from_document(list(rows)))

    def experiments(self) -> Sequence[Experiment]:
        """The current snapshot (never raises)."""
        return self._snapshot

    def set_rows(self, rows: Iterable[Mapping[str, Any]]) -> bool:
        """Replace the snapshot; ``False`` (snapshot kept) when a row is invalid."""
        try:
            snapshot = tuple(experiments_from_document(list(rows)))
        except ConfigError as error:
            log.error("config update refused, keeping the previous one: %s", error)
            return False
        with self._lock:
            self._snapshot = snapshot
        return True
