"""Events (JSON lines or Parquet in the web base shape) to analysis tables in Parquet.

The analysis table (:mod:`splitlab.analysis.table`) is written under
``<output>/stream=<stream>/day=<YYYY-MM-DD>/part-<input digest>-<n>.parquet`` (days in UTC).
Both engines read these files. Materialisation is incremental: ``_materialized.json`` in
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

from splitlab.analysis.table import EVENT_SCHEMA, PARTITION_SCHEMA, flatten
from splitlab.errors import AnalysisError

MANIFEST = "_materialized.json"
EXPORT_ROWS = 250_000
"""Rows per batch of an intake export (its JSON text must stay under 2 GiB of string offsets)."""
_JSON_OPTIONS = pj.ParseOptions(explicit_schema=EVENT_SCHEMA, unexpected_field_behavior="ignore")
_PARTITIONING = ds.partitioning(PARTITION_SCHEMA, flavor="hive")


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


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
