"""The data directory: where the embedded SQLite files, the keys and the spool live.

Every command and the service find it one way (:func:`data_dir`): the path given, else
``SPLITLAB_DATA_DIR``, else ``.splitlab/data`` (where ``./scripts/run`` keeps it). What is in it
is readable by its owner only: the folder is 0700, the files splitlab creates there 0600
(:func:`private_dir`, :func:`private_file`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

ENV = "SPLITLAB_DATA_DIR"
DEFAULT = Path(".splitlab") / "data"
ADMIN_TOKEN_FILE = "admin-token"
"""Where the service keeps the admin token it generated (when ``SPLITLAB_ADMIN_TOKEN`` is unset)."""


def data_dir(given: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The absolute data directory: ``given``, else ``$SPLITLAB_DATA_DIR`` (from ``env``,
    default the process environment), else ``.splitlab/data`` under the working directory."""
    source = os.environ if env is None else env
    return (given or Path(source.get(ENV) or DEFAULT)).resolve()


def private_dir(path: Path) -> Path:
    """``path``, created with mode 0700 if absent; an existing folder of ours loses any group
    and other access (a data dir made by an older version was 0755)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _owner_only(path)
    return path


def private_file(path: Path) -> Path:
    """``path`` in a private folder, created empty with mode 0600 if absent (an existing file of
    ours loses any group and other access).

    Create a SQLite database through this before connecting: SQLite gives the ``-wal``,
    ``-shm`` and journal files the mode of the database file, so they stay private too.

    An existing file is never opened: closing any descriptor of a file releases every POSIX
    lock the process holds on it, SQLite's included. Opening and closing a database that a
    connection of this process has open (the service's results scheduler reads the event log
    its intake writes) would drop that connection's shared lock; a reader in another process
    would then take the database for unused when it closes, checkpoint it and delete the
    write-ahead log under the writer, whose later commits nobody else would ever see.
    """
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        _owner_only(path)
    return path


def _owner_only(path: Path) -> None:
    status = path.stat()
    if status.st_mode & 0o077 and status.st_uid == os.geteuid():
        os.chmod(path, stat.S_IMODE(status.st_mode) & ~0o077)
