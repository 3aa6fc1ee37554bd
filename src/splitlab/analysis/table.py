"""The analysis table: one flat row per event, what the lake and ``splitlab materialize`` write
and both engines read, and the Arrow schema of events in the web base shape.

Files of the table live under ``<dir>/stream=<stream>/day=<YYYY-MM-DD>/*.parquet`` (days in UTC);
the partition columns are in the path, the columns of :data:`ANALYSIS_SCHEMA` in the files.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EVENT_SCHEMA = pa.schema(
    [
        ("$schema", pa.string()),
        ("meta", pa.struct([("id", pa.string()), ("dt", pa.string()), ("stream", pa.string()),
                            ("domain", pa.string())])),
        ("dt", pa.string()),
        ("action", pa.string()),
        ("action_source", pa.string()),
        ("action_context", pa.string()),
        ("mediawiki", pa.struct([("database", pa.string())])),
        ("performer", pa.struct([("id", pa.int64()), ("is_logged_in", pa.bool_())])),
        ("experiment", pa.struct([
            ("enrolled", pa.string()), ("assigned", pa.string()), ("subject_id", pa.string()),
            ("sampling_unit", pa.string()), ("coordinator", pa.string()),
            ("exposure_version", pa.string()),
        ])),
    ]
)
"""The Arrow schema of simulated (and exported) events: the web base fields splitlab reads."""

ANALYSIS_SCHEMA = pa.schema([
    ("event_id", pa.string()),  # meta.id
    ("ts", pa.int64()),  # dt (else meta.dt), microseconds since the Unix epoch (UTC)
    ("action", pa.string()),
    ("action_source", pa.string()),
    ("action_context", pa.string()),
    ("value", pa.float64()),  # action_context when it is a plain number, else null
    ("site", pa.string()),  # mediawiki.database
    ("performer_id", pa.int64()),
    ("experiment", pa.string()),  # experiment.enrolled
    ("variation", pa.string()),  # experiment.assigned
    ("subject_id", pa.string()),
    ("subject_key", pa.int64()),  # 64 bits of the subject id, the key the engines group by
    ("sampling_unit", pa.string()),
    ("exposure_version", pa.string()),
])
"""Columns of a materialised event (partition columns ``stream`` and ``day`` are in the path)."""

PARTITION_SCHEMA = pa.schema([("stream", pa.string()), ("day", pa.string())])
"""The partition columns, in the path of every file."""
_NUMBER = r"^\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_NIBBLES = np.zeros(256, dtype=np.uint8)
_NIBBLES[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)
_IS_HEX = np.zeros(256, dtype=bool)
_IS_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = True


def flatten(events: pa.Table) -> pa.Table:
    """The analysis rows (plus ``stream`` and ``day``) of a table of web base events."""
    count = events.num_rows
    when = pc.coalesce(pc.cast(_column(events, count, "dt"), pa.string()),
                       pc.cast(_column(events, count, "meta", "dt"), pa.string()))
    stamps = pc.cast(when, pa.timestamp("us", tz="UTC"))
    context = _column(events, count, "action_context")
    numeric = pc.match_substring_regex(context, _NUMBER)
    value = pc.cast(pc.if_else(numeric, context, pa.scalar(None, pa.string())), pa.float64())
    subject_id = pc.cast(_column(events, count, "experiment", "subject_id"), pa.string())
    columns = {
        "event_id": _column(events, count, "meta", "id"),
        "ts": pc.cast(stamps, pa.int64()),
        "action": _column(events, count, "action"),
        "action_source": _column(events, count, "action_source"),
        "action_context": context,
        "value": value,
        "site": _column(events, count, "mediawiki", "database"),
        "performer_id": _column(events, count, "performer", "id", kind=pa.int64()),
        "experiment": _column(events, count, "experiment", "enrolled"),
        "variation": _column(events, count, "experiment", "assigned"),
        "subject_id": subject_id,
        "subject_key": subject_keys(subject_id),
        "sampling_unit": _column(events, count, "experiment", "sampling_unit"),
        "exposure_version": _column(events, count, "experiment", "exposure_version"),
    }
    stream = pc.fill_null(_column(events, count, "meta", "stream"), "unknown")
    day = pc.cast(pc.cast(stamps, pa.date32()), pa.string())
    arrays = [*(pc.cast(columns[f.name], f.type) for f in ANALYSIS_SCHEMA), stream, day]
    return pa.Table.from_arrays(arrays, names=[*ANALYSIS_SCHEMA.names, "stream", "day"])


def subject_keys(subject_ids: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A 64-bit key per subject id: its first 16 hex digits for a ``tk-v1`` id (a SHA-256 hex
    digest), else the first 8 bytes of the SHA-256 of the id; null for a null id.

    Engines group and join on this integer instead of the 64-character id (several times
    faster). Two different subjects share a key with probability about ``n² / 2⁶⁵`` for ``n``
    subjects (3e-8 for a million).
    """
    ids = pc.cast(subject_ids, pa.string())
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    count = len(ids)
    present = ~pc.is_null(ids).to_numpy(zero_copy_only=False)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32, count=count + 1,
                            offset=4 * ids.offset)
    data = ids.buffers()[2]
    chars = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    hexed = present & (lengths >= 16)
    if hexed.all() and (lengths == 64).all():  # every id a tk-v1 digest: a zero-copy view
        heads = chars[offsets[0] : offsets[-1]].reshape(-1, 64)[:, :16]
    else:
        heads = chars[offsets[:-1][hexed][:, None] + np.arange(16)]
    good = _IS_HEX[heads].all(axis=1)
    hexed[hexed] = good
    nibbles = _NIBBLES[heads[good]]
    keys = np.zeros(count, dtype=np.uint64)
    keys[hexed] = np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2]).view(">u8")[
        :, 0]
    others = np.flatnonzero(present & ~hexed)
    for index, text in zip(others, ids.take(pa.array(others)).to_pylist(), strict=True):
        keys[index] = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return pa.array(keys.view(np.int64), mask=~present)


def _column(
    events: pa.Table, count: int, name: str, child: str | None = None,
    kind: pa.DataType | None = None,
) -> pa.ChunkedArray | pa.Array:
    """A column (or a struct's child) of ``events``; all nulls when the input does not have it."""
    kind = kind or pa.string()
    if name not in events.column_names:
        return pa.nulls(count, kind)
    column = events.column(name)
    if child is None:
        return column
    if not pa.types.is_struct(column.type) or column.type.get_field_index(child) < 0:
        return pa.nulls(count, kind)
    return pc.struct_field(column, child)
