"""The lake: the analysis table as Parquet under ``<data dir>/lake/stream=<s>/day=<d>/``, extended
incrementally from event sources (the event logs, a JetStream consumer).

Guarantees:

- **Exactly once by** ``meta.id``: the lake keeps a 16-byte key of every event id written (the
  UUID's bytes, or the first 16 bytes of the id's SHA-256 when it is not a UUID in canonical
  form); an event whose key is there — a re-delivery, a client's re-send, a re-read after a crash
  — is skipped. The keys of recent batches are in ``_state.sqlite`` (table ``ids``, committed
  with each batch); once there are ``recent_ids`` of them they move into an immutable sorted
  *run* file under ``_ids/`` (merged with the smaller runs, so there are few). Probing a run is
  a binary search in a memory map, and no write touches the pages of the large runs: a run's
  cost grows with its new events, not with the number of ids the lake holds.
- **No partial file**: a file is written under a hidden temporary name, fsynced and renamed into
  place. Its name is recorded as *pending* before it is written, and the batch's ids, the source's
  checkpoint and the tallies are committed together after the rename; opening the lake deletes the
  files of a batch that crashed before that commit (their events are read again).
- **Incremental cost**: a run reads the source from its checkpoint, so it costs the new events
  (plus one index probe per event), not the size of the lake.

One writer at a time: :meth:`Lake.extend` holds an exclusive lock on ``_state.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from splitlab.intake.sinks import StoredEvent
from splitlab.intake.streams import DEFAULT_ERROR_STREAM
from splitlab.results.rows import Tally, rows_of

LAKE_DIR = "lake"
STATE_FILE = "_state.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ids (key BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (source TEXT PRIMARY KEY, position TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (file TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS files (file TEXT PRIMARY KEY, source TEXT NOT NULL,
                                  rows INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tallies (experiment TEXT PRIMARY KEY, events INTEGER NOT NULL,
                                    errors INTEGER NOT NULL, last_enrollment_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS facts (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS id_runs (file TEXT PRIMARY KEY, keys INTEGER NOT NULL);
"""
_PROBE = 500
RUNS_DIR = "_ids"
RECENT_IDS = 1_000_000
"""How many ids the state database keeps before they move into a run file."""
_TIER = 4
"""A new run absorbs every smaller run of at most this many times its own size."""
KEY = np.dtype("S16")
_BLOOM_BITS = 16
"""Bits per key of a run's Bloom filter (one 64-bit word per key, 8 bits set in it: about 1%
false positives)."""
_BLOOM_HASHES = 8


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""A UUID exactly as ``str(uuid.UUID(...))`` writes it (lower-case hex, 8-4-4-4-12)."""


def id_key(event_id: str) -> bytes:
    """The 16-byte key of an event id (see the module docstring): a UUID in its canonical text
    gives its 16 bytes, any other id the first 16 bytes of its SHA-256. (Matching the canonical
    form and reading the hex is the same as ``uuid.UUID(event_id).bytes`` when
    ``str(uuid.UUID(event_id)) == event_id``, at a fifth of the cost: it runs once per event.)"""
    if _CANONICAL_UUID.fullmatch(event_id):
        return bytes.fromhex(event_id.replace("-", ""))
    return hashlib.sha256(event_id.encode()).digest()[:16]


_LOWER_HEX = np.full(256, 255, dtype=np.uint8)
_LOWER_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)
_DASHES = np.array([8, 13, 18, 23])
_DIGITS = np.setdiff1d(np.arange(36), _DASHES)


def uuid_rows(chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For an ``(n, 36)`` array of ASCII codes: each row's 16 bytes read as a UUID (an ``(n, 16)``
    array) and whether the row is a UUID in canonical form (only those keys are meaningful)."""
    nibbles = _LOWER_HEX[chars[:, _DIGITS]]
    canonical = (chars[:, _DASHES] == ord("-")).all(axis=1) & (nibbles != 255).all(axis=1)
    return np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2]), canonical


def id_keys(event_ids: Sequence[str]) -> list[bytes]:
    """:func:`id_key` of each id, the canonical UUIDs decoded together (no regular expression
    or ``bytes.fromhex`` per id: a lake run keys every event it reads)."""
    joined = "".join(event_ids)
    if len(joined) != 36 * len(event_ids) or not joined.isascii():
        return [id_key(event_id) for event_id in event_ids]
    keys, canonical = uuid_rows(np.frombuffer(joined.encode(), dtype=np.uint8).reshape(-1, 36))
    raw = keys.tobytes()
    return [raw[16 * n:16 * n + 16] if ok else id_key(event_ids[n])
            for n, ok in enumerate(canonical.tolist())]


@dataclass(frozen=True, slots=True)
class Batch:
    """Events read from a source, and the source's checkpoint once they are in the lake
    (``None`` when the source keeps its own position, as a durable consumer does)."""

    events: Sequence[StoredEvent]
    position: str | None


class EventSource(Protocol):
    """Where the lake's events come from."""

    name: str
    """Names the checkpoint and the files (lower-case letters, digits, ``-``)."""

    def batches(self, position: str | None) -> Iterator[Batch]:
        """Batches of events after ``position`` (the last committed checkpoint, ``None`` at
        first), until the source has nothing more right now."""
        ...

    def committed(self, batch: Batch) -> None:
        """Called once ``batch`` is durably in the lake (a consumer acknowledges it here)."""
        ...


@dataclass(frozen=True, slots=True)
class ExtendResult:
    """What one run did: events read, events written (new ids), duplicates skipped, files."""

    read: int = 0
    written: int = 0
    duplicates: int = 0
    files: int = 0

    def __add__(self, other: ExtendResult) -> ExtendResult:
        return ExtendResult(self.read + other.read, self.written + other.written,
                            self.duplicates + other.duplicates, self.files + other.files)


class Lake:
    """The lake under ``root`` (``<data dir>/lake``); close it with :meth:`close`."""

    def __init__(self, root: Path, error_stream: str = DEFAULT_ERROR_STREAM,
                 recent_ids: int = RECENT_IDS) -> None:
        self.root = root
        self.error_stream = error_stream
        self.recent_ids = recent_ids
        self._runs: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        (root / RUNS_DIR).mkdir(parents=True, exist_ok=True)
        self._lock = open(root / "_state.lock", "a+b")  # noqa: SIM115
        self._db = sqlite3.connect(root / STATE_FILE, isolation_level=None,
                                   check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)
        with self._locked():
            self._recover()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def _recover(self) -> None:
        """Delete the files of batches that never committed, and stray temporary files."""
        for (name,) in self._db.execute("SELECT file FROM pending").fetchall():
            (self.root / name).unlink(missing_ok=True)
        self._db.execute("DELETE FROM pending")
        for stray in self.root.rglob(".*.tmp"):
            stray.unlink(missing_ok=True)
        if self._db.execute("SELECT 1 FROM facts WHERE key = 'recent_ids'").fetchone() is None:
            self._db.execute("INSERT INTO facts (key, value) SELECT 'recent_ids', count(*) "
                             "FROM ids")  # a lake from before the runs: counted once
        runs = {name for (name,) in self._db.execute("SELECT file FROM id_runs")}
        runs |= {_bloom_name(name) for name in runs}
        for path in (self.root / RUNS_DIR).iterdir():
            if path.name not in runs:  # merged away, or written by a compaction that crashed
                path.unlink()

    def close(self) -> None:
        """Close the state database."""
        self._db.close()
        self._lock.close()

    def checkpoint(self, source: str) -> str | None:
        """The committed position of ``source`` (``None`` before its first batch)."""
        row = self._db.execute("SELECT position FROM checkpoints WHERE source = ?",
                               (source,)).fetchone()
        return None if row is None else str(row[0])

    def extend(self, source: EventSource) -> ExtendResult:
        """Move every event ``source`` has now into the lake, batch by batch."""
        total = ExtendResult()
        with self._locked():
            for batch in source.batches(self.checkpoint(source.name)):
                total = total + self._write(source.name, batch)
                source.committed(batch)
        return total

    def _fresh(self, events: Sequence[StoredEvent]) -> list[tuple[bytes, StoredEvent]]:
        """The events whose ids the lake does not hold yet (the first of repeats in a batch)."""
        keyed: dict[bytes, StoredEvent] = {}
        for key, event in zip(id_keys([event.id for event in events]), events, strict=True):
            keyed.setdefault(key, event)
        keys = list(keyed)
        for start in range(0, len(keys), _PROBE):
            chunk = keys[start:start + _PROBE]
            marks = ",".join("?" * len(chunk))
            for (seen,) in self._db.execute(f"SELECT key FROM ids WHERE key IN ({marks})", chunk):
                keyed.pop(bytes(seen), None)
        runs = self._id_runs()
        if keyed and runs:
            probes = np.array(list(keyed), dtype=KEY)
            seen = np.zeros(len(probes), dtype=bool)
            for run, bloom in runs:
                # The filter (in memory) rules out most keys; the rest are looked up, in order,
                # in the mapped run, so a run out of the page cache costs few reads.
                maybe = np.flatnonzero(_in_bloom(bloom, probes)) if bloom is not None \
                    else np.arange(len(probes))
                maybe = maybe[np.argsort(probes[maybe])]
                at = np.searchsorted(run, probes[maybe]).clip(max=len(run) - 1)
                seen[maybe] |= run[at] == probes[maybe]
            for key in probes[seen]:
                del keyed[key.ljust(16, b"\0")]  # numpy drops trailing NULs of S16 items
        return list(keyed.items())

    def _id_runs(self) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """The committed run files, memory-mapped, with their Bloom filters read into memory
        (each opened once; another writer may have compacted since the last call, so the list
        is read again). A run without a filter file is searched for every key."""
        names = [name for (name,) in self._db.execute("SELECT file FROM id_runs")]
        self._runs = {name: self._runs[name] if name in self._runs else self._open_run(name)
                      for name in names}
        return list(self._runs.values())

    def _open_run(self, name: str) -> tuple[np.ndarray, np.ndarray | None]:
        keys = np.memmap(self.root / RUNS_DIR / name, dtype=KEY, mode="r")
        bloom = self.root / RUNS_DIR / _bloom_name(name)
        return keys, np.fromfile(bloom, dtype=np.uint64) if bloom.is_file() else None

    def _compact(self, extra: np.ndarray | None = None) -> None:
        """Move the recent ids (and ``extra``) into a new run, merged with every run of at most
        ``_TIER`` times its size; the state database switches to it in one transaction (files
        it no longer names are deleted at once, or by :meth:`_recover` after a crash)."""
        db = self._db
        recent = [key for (key,) in db.execute("SELECT key FROM ids ORDER BY key")]
        merged = np.array(recent, dtype=KEY)
        if extra is not None:
            merged = np.unique(np.concatenate([merged, extra.astype(KEY)]))
        if not len(merged):
            return
        absorbed = []
        for name, count in db.execute("SELECT file, keys FROM id_runs ORDER BY keys").fetchall():
            if count > _TIER * len(merged):
                break
            run = np.fromfile(self.root / RUNS_DIR / name, dtype=KEY)
            merged = np.sort(np.concatenate([merged, run]), kind="stable")
            absorbed.append(name)
        name = f"run-{uuid.uuid4().hex[:16]}.keys"
        _write_atomically(self.root / RUNS_DIR / name, merged.tofile)
        _write_atomically(self.root / RUNS_DIR / _bloom_name(name), _bloom(merged).tofile)
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO id_runs (file, keys) VALUES (?, ?)", (name, len(merged)))
            db.executemany("DELETE FROM id_runs WHERE file = ?", [(n,) for n in absorbed])
            db.execute("DELETE FROM ids")
            db.execute("UPDATE facts SET value = '0' WHERE key = 'recent_ids'")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for old in absorbed:
            (self.root / RUNS_DIR / old).unlink()
            (self.root / RUNS_DIR / _bloom_name(old)).unlink(missing_ok=True)

    def add_ids(self, keys: np.ndarray) -> None:
        """Record ``keys`` (16-byte ids) as written — for a lake whose Parquet files were made
        by another tool (they go straight into a run, merged as a compaction would)."""
        with self._locked():
            self._compact(keys)

    def _write(self, source: str, batch: Batch) -> ExtendResult:
        fresh = self._fresh(batch.events)
        rows = rows_of([event for _, event in fresh], self.error_stream)
        table = rows.table
        parts = _partitions(table)
        token = uuid.uuid4().hex[:16]
        names = {part: f"stream={part[0]}/day={part[1]}/part-{source}-{token}.parquet"
                 for part in parts}
        self._db.executemany("INSERT INTO pending (file) VALUES (?)",
                             [(n,) for n in names.values()])
        for part, indices in parts.items():
            _write_file(table.take(indices), self.root / names[part])
        through = max((e.dt for _, e in fresh), default=None)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO ids (key) VALUES (?)", [(k,) for k, _ in fresh])
            db.execute("UPDATE facts SET value = CAST(value AS INTEGER) + ? "
                       "WHERE key = 'recent_ids'", (len(fresh),))
            db.executemany("INSERT INTO files (file, source, rows) VALUES (?, ?, ?)",
                           [(names[p], source, len(i)) for p, i in parts.items()])
            db.executemany(
                "INSERT INTO tallies (experiment, events, errors, last_enrollment_us) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (experiment) DO UPDATE SET "
                "events = events + excluded.events, errors = errors + excluded.errors, "
                "last_enrollment_us = max(last_enrollment_us, excluded.last_enrollment_us)",
                [(n, t.events, t.errors, t.last_enrollment_us) for n, t in rows.tallies.items()])
            if batch.position is not None:
                db.execute("INSERT INTO checkpoints (source, position) VALUES (?, ?) "
                           "ON CONFLICT (source) DO UPDATE SET position = excluded.position",
                           (source, batch.position))
            if through is not None:
                db.execute("INSERT INTO facts (key, value) VALUES ('events_through', ?) "
                           "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                           (through,))
            db.execute("DELETE FROM pending")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if self._recent() >= self.recent_ids:
            self._compact()
        return ExtendResult(len(batch.events), len(fresh), len(batch.events) - len(fresh),
                            len(parts))

    def _recent(self) -> int:
        row = self._db.execute("SELECT value FROM facts WHERE key = 'recent_ids'").fetchone()
        return int(row[0])

    def tallies(self) -> dict[str, Tally]:
        """Per experiment: events, error events naming it, latest enrollment time."""
        rows = self._db.execute("SELECT experiment, events, errors, last_enrollment_us "
                                "FROM tallies").fetchall()
        return {name: Tally(events, errors, last) for name, events, errors, last in rows}

    def events_through(self) -> str | None:
        """The latest receive time (``meta.dt``) of an event in the lake."""
        row = self._db.execute("SELECT value FROM facts WHERE key = 'events_through'").fetchone()
        return None if row is None else str(row[0])

    def files(self, after: int = 0) -> list[tuple[int, Path]]:
        """The committed Parquet files in the order they were written: ``(number, path)`` of
        each file numbered above ``after`` (numbers only grow; files are never removed)."""
        rows = self._db.execute("SELECT rowid, file FROM files WHERE rowid > ? AND rows > 0 "
                                "ORDER BY rowid", (after,)).fetchall()
        return [(int(number), self.root / name) for number, name in rows]

    def has_files(self) -> bool:
        """Whether any Parquet file has been written."""
        return self._db.execute("SELECT 1 FROM files WHERE rows > 0 LIMIT 1").fetchone() is not None


def _bloom_name(run: str) -> str:
    return run.removesuffix(".keys") + ".bloom"


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over unsigned 64-bit values (wrapping arithmetic)."""
    values = values ^ (values >> np.uint64(30))
    values = values * np.uint64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> np.uint64(27))
    values = values * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = values ^ (values >> np.uint64(31))
    return mixed


def _bloom_slots(keys: np.ndarray, words: int) -> tuple[np.ndarray, np.ndarray]:
    """Each key's word of a ``words``-word filter and the bits it sets there. The key's bytes
    are mixed first: ids need not be random (time-ordered UUIDs share their first bytes)."""
    halves = np.ascontiguousarray(keys, dtype=KEY).view(np.uint64).reshape(-1, 2)
    hashed = _mix(halves[:, 0] ^ _mix(halves[:, 1]))
    spread = _mix(hashed ^ np.uint64(0x9E3779B97F4A7C15))
    bits = np.zeros(len(hashed), dtype=np.uint64)
    for i in range(_BLOOM_HASHES):
        bits |= np.uint64(1) << ((spread >> np.uint64(6 * i)) & np.uint64(63))
    return hashed % np.uint64(words), bits


def _bloom(keys: np.ndarray) -> np.ndarray:
    """The Bloom filter of ``keys``: one 64-bit word per key chosen by its hash, 8 bits set."""
    filter_: np.ndarray = np.zeros(max(1, -(-len(keys) * _BLOOM_BITS // 64)), dtype=np.uint64)
    words, bits = _bloom_slots(keys, len(filter_))
    np.bitwise_or.at(filter_, words, bits)
    return filter_


def _in_bloom(filter_: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each key may be in the run (``False``: certainly not)."""
    words, bits = _bloom_slots(keys, len(filter_))
    found: np.ndarray = (filter_[words] & bits) == bits
    return found


def _partitions(table: pa.Table) -> dict[tuple[str, str], pa.Array]:
    """The row indices of each ``(stream, day)`` of ``table``, in row order."""
    numbered = table.select(["stream", "day"]).append_column(
        "row", pa.array(range(table.num_rows), pa.int64()))
    grouped = numbered.group_by(["stream", "day"], use_threads=False).aggregate([("row", "list")])
    return {(stream, day): rows.values for stream, day, rows in zip(
        grouped.column("stream").to_pylist(), grouped.column("day").to_pylist(),
        grouped.column("row_list").combine_chunks(), strict=True)}


def _write_file(table: pa.Table, path: Path) -> None:
    """Write ``table``'s rows to the Parquet file ``path`` atomically."""
    columns = table.drop_columns(["stream", "day"])
    _write_atomically(path, lambda handle: pq.write_table(columns, handle, compression="zstd"))


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Make ``path`` with ``write``: a hidden temporary file, fsync, rename, fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
