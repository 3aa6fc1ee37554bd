"""Events (JSON lines or Parquet in the web base shape) to analysis tables in Parquet.

The analysis table is flat, one row per event, with the columns of :data:`ANALYSIS_SCHEMA`; it is
written under ``<output>/stream=<stream>/day=<YYYY-MM-DD>/part-<input digest>-<n>.parquet`` (days
in UTC). Both engines read these files. Materialisation is incremental: ``_materialized.json`` in
the output directory records each input file (path, size, modification time); an input already
recorded unchanged is skipped, a changed one has its earlier parts replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.json as pj
import pyarrow.parquet as pq

from splitlab.analysis.simulate import EVENT_SCHEMA
from splitlab.errors import AnalysisError

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

MANIFEST = "_materialized.json"
EXPORT_ROWS = 250_000
"""Rows per batch of an intake export (its JSON text must stay under 2 GiB of string offsets)."""
_NUMBER = r"^\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_NIBBLES = np.zeros(256, dtype=np.uint8)
_NIBBLES[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)
_IS_HEX = np.zeros(256, dtype=bool)
_IS_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = True
_JSON_OPTIONS = pj.ParseOptions(explicit_schema=EVENT_SCHEMA, unexpected_field_behavior="ignore")
_PARTITIONING = ds.partitioning(pa.schema([("stream", pa.string()), ("day", pa.string())]),
                                flavor="hive")


@dataclass(frozen=True, slots=True)
class MaterializeResult:
    """What one run did: inputs written (with their event counts) and inputs skipped."""

    written: dict[str, int]
    skipped: list[str]


def input_files(path: Path) -> list[Path]:
    """``path`` itself, or every ``*.jsonl`` / ``*.json`` / ``*.parquet`` file under it."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise AnalysisError(f"no such events file or directory: {path}")
    found = [p for p in sorted(path.rglob("*")) if p.suffix in {".jsonl", ".json", ".parquet"}]
    if not found:
        raise AnalysisError(f"no .jsonl or .parquet event files under {path}")
    return found


def materialize(events: Path, output: Path, batch_rows: int = 2_000_000) -> MaterializeResult:
    """Materialise every event file at ``events`` into ``output`` (see the module docstring)."""
    output.mkdir(parents=True, exist_ok=True)
    manifest_path = output / MANIFEST
    manifest: dict[str, Any] = (
        json.loads(manifest_path.read_text()) if manifest_path.exists() else {"inputs": {}}
    )
    result = MaterializeResult({}, [])
    for source in input_files(events):
        key = str(source.resolve())
        stat = source.stat()
        seen = manifest["inputs"].get(key)
        if seen and seen["size"] == stat.st_size and seen["mtime_ns"] == stat.st_mtime_ns:
            result.skipped.append(key)
            continue
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        for old in output.rglob(f"part-{digest}-*.parquet"):
            old.unlink()
        count = 0
        for number, batch in enumerate(_read(source, batch_rows)):
            table = flatten(batch)
            count += table.num_rows
            ds.write_dataset(
                table, output, format="parquet", partitioning=_PARTITIONING,
                basename_template=f"part-{digest}-{number}-{{i}}.parquet",
                existing_data_behavior="overwrite_or_ignore",
                file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
            )
        manifest["inputs"][key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                   "events": count, "digest": digest}
        _write_atomically(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
        result.written[key] = count
    return result


def _read(source: Path, batch_rows: int) -> Iterator[pa.Table]:
    try:
        if source.suffix == ".parquet":
            parquet = pq.ParquetFile(source)
            if _is_intake_export(parquet.schema_arrow):
                for batch in parquet.iter_batches(EXPORT_ROWS, columns=["event"]):
                    yield pj.read_json(_json_lines(batch.column(0)), parse_options=_JSON_OPTIONS)
                return
            for batch in parquet.iter_batches(batch_size=batch_rows):
                yield pa.Table.from_batches([batch])
            return
        yield pj.read_json(source, parse_options=_JSON_OPTIONS)
    except (pa.ArrowInvalid, OSError) as error:
        raise AnalysisError(f"cannot read events from {source}: {error}") from error


def _is_intake_export(schema: pa.Schema) -> bool:
    """Whether a Parquet file is ``splitlab events export``'s: each whole event as JSON text in
    an ``event`` column (beside ``id, stream, dt, schema, action``), not nested columns."""
    names = set(schema.names)
    return ("event" in names and "meta" not in names and "experiment" not in names
            and pa.types.is_string(schema.field("event").type))


def _json_lines(texts: pa.Array) -> pa.BufferReader:
    """The strings of ``texts`` as one newline-delimited buffer, without Python objects: each
    gets a newline appended, and the data buffer of the result is the JSON-lines text."""
    lines = pc.binary_join_element_wise(texts, "", "\n")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1,
                            offset=4 * lines.offset)
    data = lines.buffers()[2]
    start, end = int(offsets[0]), int(offsets[-1])
    return pa.BufferReader(data.slice(start, end - start) if data is not None else b"")


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


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
