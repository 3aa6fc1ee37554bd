"""Arrow text columns built without Python objects, and writing simulated events to a file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def fixed_strings(chars: np.ndarray) -> pa.Array:
    """A string array from an ``(n, width)`` array of ASCII codes, without Python objects."""
    count, width = chars.shape
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets),
                                       pa.py_buffer(np.ascontiguousarray(chars)))


def uuids(rng: np.random.Generator, count: int) -> pa.Array:
    """Random version-4 UUIDs in their 36-character text form."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = np.empty((count, 32), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 0x0F]
    text = np.full((count, 36), ord("-"), dtype=np.uint8)
    for lo, hi, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at : at + hi - lo] = digits[:, lo:hi]
    return fixed_strings(text)


def iso_times(micros: np.ndarray) -> pa.Array:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` for each time (microseconds since the epoch, after 1970).

    The civil date comes from Howard Hinnant's ``civil_from_days``; done in numpy, because
    Arrow's ``strftime`` costs about a microsecond per value.
    """
    millis = micros // 1000
    days, in_day = np.divmod(millis, 86_400_000)
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    fields = (
        (year, 4, 0), (month, 2, 5), (day, 2, 8), (in_day // 3_600_000, 2, 11),
        (in_day // 60_000 % 60, 2, 14), (in_day // 1000 % 60, 2, 17), (in_day % 1000, 3, 20),
    )
    text = np.empty((len(micros), 24), dtype=np.uint8)
    text[:] = np.frombuffer(b"0000-00-00T00:00:00.000Z", dtype=np.uint8)
    for value, width, at in fields:
        for digit in range(width):
            text[:, at + width - 1 - digit] = 48 + (value // 10**digit) % 10
    return fixed_strings(text)


def write_events(tables: Iterator[pa.Table], path: Path) -> int:
    """Write events to ``path``: Parquet (one row group per table) unless it ends in ``.jsonl``.

    JSON lines leave out absent (null) fields, as a client would. Returns the number of events.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    if path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as out:
            for table in tables:
                for row in table.to_pylist():
                    out.write(json.dumps(without_nulls(row), separators=(",", ":")) + "\n")
                written += table.num_rows
        return written
    writer: pq.ParquetWriter | None = None
    try:
        for table in tables:
            plain = table.cast(_plain_schema(table.schema))
            if writer is None:
                writer = pq.ParquetWriter(path, plain.schema, compression="zstd")
            writer.write_table(plain, row_group_size=max(1, plain.num_rows))
            written += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return written


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with dictionary columns as plain strings (still dictionary-encoded on disk)."""
    return pa.schema([pa.field(f.name, _plain_type(f.type)) for f in schema])


def _plain_type(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(kind):
        return kind.value_type
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _plain_type(f.type)) for f in kind])
    return kind


def without_nulls(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without its null fields, at every level (as a client leaves absent fields out)."""
    return {
        k: without_nulls(v) if isinstance(v, dict) else v for k, v in row.items() if v is not None
    }
