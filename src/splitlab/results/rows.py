"""Stored events to rows of the analysis table, for both experiment fragments of the web base shape.

- **2.1.0** (singular ``experiment{enrolled, assigned, subject_id, sampling_unit, ...}``): one row,
  the fragment's fields as they are.
- **1.3.0** (plural ``experiments{enrolled: [names], assigned: {name: group}}``): one row per
  enrolled experiment. The fragment carries no subject id; the unit is ``performer.id`` (only
  ``mw-user`` experiments log it), and the row gets the subject id ``tk-v1`` gives that user in
  that experiment, ``sha256_hex(str(performer.id) + name)`` — the id a 2.1.0 event of the same
  user carries, so a unit logging both shapes is one unit. Without ``performer.id`` (anonymous
  units, ``edge-unique`` and ``session`` experiments) the row has no subject and is not counted.
- Neither fragment: one row with the experiment columns null.

Events of the error stream are kept as rows with null experiment columns; the experiment named in
their ``raw_event`` is counted in the per-experiment tallies (the error-share health check).

A field of the wrong JSON type (a number where a string belongs, a boolean or a float as
``performer.id``) is null in the row. ``ts`` is ``dt`` as ISO 8601 (UTC when it has no offset),
else the receive time ``meta.dt``; an event with neither is dropped, as is a body that is not a
JSON object.

The work is columnar: a batch's bodies go to DuckDB's JSON reader in one call, which extracts
every field the row needs; times, numbers, keys and partitions are Arrow expressions. Python
touches single events only where a column cannot say it: 1.3.0 fragments (a row per name, a
hash per row), error events (their ``raw_event`` is JSON inside a string), and times or numbers
outside the canonical forms (``YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]``, plain decimals), which
:func:`micros` and ``float`` read exactly as before.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from splitlab.analysis.table import ANALYSIS_SCHEMA, subject_keys
from splitlab.intake.sinks import StoredEvent

ENROLLMENT = "experiment_enrollment"
_NUMBER = re.compile(r"^\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_PLAIN_NUMBER = r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,2})?$"
_CANONICAL_TIME = (r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
                   r"(\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIELDS = {  # column → JSON path in the body; the singular fragment's fields last
    "dt": "$.dt", "action": "$.action", "action_source": "$.action_source",
    "action_context": "$.action_context", "site": "$.mediawiki.database",
    "performer": "$.performer.id", "experiment": "$.experiment.enrolled",
    "variation": "$.experiment.assigned", "subject_id": "$.experiment.subject_id",
    "sampling_unit": "$.experiment.sampling_unit",
    "exposure_version": "$.experiment.exposure_version",
}
_STRINGS = [name for name in _FIELDS if name not in ("performer", "dt")]
_PERFORMER = list(_FIELDS).index("performer") + 1


def _time_sql(text: str, name: str) -> str:
    """Microseconds of ``text`` when canonical (``{name}``), else the text for :func:`micros`
    (``{name}_other``)."""
    canonical = f"regexp_full_match({text}, '{_CANONICAL_TIME}')"
    return (f"CASE WHEN {canonical} THEN epoch_us(TRY_CAST({text} AS TIMESTAMPTZ)) END AS {name}"
            f", CASE WHEN NOT {canonical} THEN {text} END AS {name}_other")


_EXTRACT = (
    "SET TimeZone = 'UTC'; SELECT i, "
    + ", ".join(f"CASE WHEN json_type(v[{n}]) = 'VARCHAR' THEN v[{n}] ->> '$' END AS {name}"
                for n, name in enumerate(_FIELDS, 1) if name not in ("performer", "dt"))
    + f", CASE WHEN json_type(v[{_PERFORMER}]) IN ('BIGINT', 'UBIGINT') "
    f"THEN TRY_CAST(v[{_PERFORMER}] AS BIGINT) END AS performer_id"
    ", json_type(plural) = 'ARRAY' AS plural, "
    + _time_sql("CASE WHEN json_type(v[1]) = 'VARCHAR' THEN v[1] ->> '$' END", "ts") + ", "
    + _time_sql("received", "received")
    + " FROM (SELECT i, received, json_extract(body, ["
    + ", ".join(f"'{path}'" for path in _FIELDS.values())
    + "]) AS v, json_extract(body, '$.experiments.enrolled') AS plural"
    " FROM batch WHERE json_valid(body) AND json_type(body) = 'OBJECT') ORDER BY i"
)


@dataclass(slots=True)
class Tally:
    """Per experiment, what a batch held: its events, error events naming it, and when the
    latest of its enrollment events arrived (``meta.dt``, microseconds since the epoch; 0 when
    none)."""

    events: int = 0
    errors: int = 0
    last_enrollment_us: int = 0


@dataclass(slots=True)
class Rows:
    """The analysis rows (the columns of :data:`ANALYSIS_SCHEMA` plus ``stream`` and ``day``) in
    the order of the events they came from, and the per-experiment tallies of those events."""

    table: pa.Table
    tallies: dict[str, Tally] = field(default_factory=dict)

    def tally(self, experiment: str) -> Tally:
        return self.tallies.setdefault(experiment, Tally())


def micros(text: object) -> int | None:
    """An ISO 8601 time as microseconds since the epoch (UTC when no offset), else ``None``."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


Fragment = tuple[str | None, str | None, str | None, str | None, str | None]
"""``(experiment, group, subject_id, sampling_unit, exposure_version)`` of one analysis row."""


def _plural(event: Mapping[str, Any]) -> list[Fragment]:
    """The rows of a 1.3.0 ``experiments`` fragment (see the module docstring)."""
    plural = event.get("experiments")
    if not isinstance(plural, Mapping) or not isinstance(plural.get("enrolled"), list):
        return []
    assigned = plural.get("assigned")
    groups = assigned if isinstance(assigned, Mapping) else {}
    performer = event.get("performer")
    user = performer.get("id") if isinstance(performer, Mapping) else None
    has_user = isinstance(user, int) and not isinstance(user, bool)
    found: list[Fragment] = []
    for name in plural["enrolled"]:
        if isinstance(name, str) and name:
            subject = (hashlib.sha256(f"{user}{name}".encode()).hexdigest() if has_user
                       else None)
            found.append((name, _text(groups.get(name)), subject,
                          "mw-user" if has_user else None, None))
    return found


def _fragments(event: Mapping[str, Any]) -> list[Fragment]:
    """The fragments an event is about: its singular one, else its plural ones."""
    single = event.get("experiment")
    if isinstance(single, Mapping) and isinstance(single.get("enrolled"), str):
        return [(single["enrolled"], _text(single.get("assigned")),
                 _text(single.get("subject_id")), _text(single.get("sampling_unit")),
                 _text(single.get("exposure_version")))]
    return _plural(event)


def _errored_experiments(body: bytes) -> list[str]:
    """The experiments an error event's ``raw_event`` names (either fragment)."""
    try:
        event = orjson.loads(body)
        raw = event.get("raw_event") if isinstance(event, dict) else None
        original = orjson.loads(raw) if isinstance(raw, str) else None
    except orjson.JSONDecodeError:
        return []
    if not isinstance(original, Mapping):
        return []
    return [name for name, *_ in _fragments(original) if name is not None]


def _times(table: pa.Table, name: str) -> pa.Array:
    """Column ``name`` (microseconds of canonical times) with :func:`micros` of the other texts
    (column ``<name>_other``) filled in one by one."""
    parsed = _array(table, name)
    others = _array(table, f"{name}_other")
    if not others.null_count < len(others):
        return parsed
    values = parsed.to_pylist()
    for index in pc.indices_nonzero(pc.is_valid(others)).to_pylist():
        values[index] = micros(others[index].as_py())
    return pa.array(values, pa.int64())


def _values(contexts: pa.Array) -> pa.Array:
    """``float(context)`` where the context is a number by :data:`_NUMBER`, else null."""
    plain = pc.fill_null(pc.match_substring_regex(contexts, _PLAIN_NUMBER), False)
    parsed = pc.cast(pc.if_else(plain, contexts, pa.scalar(None, pa.string())), pa.float64())
    others = pc.and_(pc.invert(plain), pc.is_valid(contexts))
    if not pc.any(others).as_py():
        return parsed
    values = parsed.to_pylist()
    for index in pc.indices_nonzero(others).to_pylist():
        text = contexts[index].as_py()
        values[index] = float(text) if _NUMBER.match(text) else None
    return pa.array(values, pa.float64())


def _texts(values: list[bytes]) -> pa.Array:
    """UTF-8 byte strings as one Arrow string array, built from one join and one offsets array
    (pyarrow's conversion of a list costs microseconds per value); not UTF-8: ``ArrowInvalid``."""
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=len(values)), out=offsets[1:])
    binary = pa.Array.from_buffers(pa.large_binary(), len(values),
                                   [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(values))])
    return binary.cast(pa.large_string())


def _extract(events: Sequence[StoredEvent]) -> pa.Table:
    """One row per event whose body is a JSON object: its index ``i`` and the fields of
    :data:`_FIELDS` (wrong JSON types as null), ``performer_id`` and whether it has a plural
    fragment."""
    batch = pa.table({"i": pa.array(range(len(events)), pa.int64()),
                      "body": _texts([e.body for e in events]),
                      "received": pa.array([e.dt for e in events], pa.string())})
    connection = duckdb.connect()
    try:
        connection.register("batch", batch)
        extracted: pa.Table = connection.sql(_EXTRACT).to_arrow_table()
    finally:
        connection.close()
    return extracted


def rows_of(events: Sequence[StoredEvent], error_stream: str) -> Rows:
    """The analysis rows of ``events`` (each stored event is one or more rows)."""
    fields = _extract(events)
    index = fields.column("i").to_pylist()
    received = _times(fields, "received")
    ts = pc.coalesce(_times(fields, "ts"), received)
    keep = pc.is_valid(ts)
    streams = pa.array([events[i].stream for i in index], pa.string())
    errors = pc.equal(streams, error_stream)
    single = pc.and_(pc.is_valid(_array(fields, "experiment")), pc.invert(errors))
    plural = pc.and_(pc.and_(pc.fill_null(_array(fields, "plural"), False), pc.invert(single)),
                     pc.invert(errors))
    columns: dict[str, Any] = {name: _array(fields, name) for name in _STRINGS}
    columns.update(ts=ts, received=received, stream=streams, i=pa.array(index, pa.int64()),
                   event_id=pa.array([events[i].id for i in index], pa.string()),
                   performer_id=_array(fields, "performer_id"),
                   j=pa.nulls(len(index), pa.int64()))
    for name in ("experiment", "variation", "subject_id", "sampling_unit", "exposure_version"):
        columns[name] = pc.if_else(single, columns[name], pa.scalar(None, pa.string()))
    table = pa.table(columns).filter(keep)
    rows = Rows(pa.table({}))
    plural_rows = _plural_rows(table.filter(pc.filter(plural, keep)), events)
    if plural_rows.num_rows:
        table = pa.concat_tables([table.filter(pc.invert(pc.filter(plural, keep))), plural_rows])
        table = table.sort_by([("i", "ascending"), ("j", "ascending")])
    for i in table.filter(pc.equal(table.column("stream"), error_stream)).column("i").to_pylist():
        for errored in _errored_experiments(events[i].body):
            rows.tally(errored).errors += 1
    _tally(table, rows)
    rows.table = _analysis_table(table)
    return rows


def _array(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).combine_chunks()


def _plural_rows(table: pa.Table, events: Sequence[StoredEvent]) -> pa.Table:
    """The rows of events with a 1.3.0 fragment: each event's row repeated per fragment (``j``
    its position), or kept once with null experiment columns when it has none."""
    if not table.num_rows:
        return table
    takes: list[int] = []
    positions: list[int] = []
    found: list[Fragment] = []
    for row, i in enumerate(table.column("i").to_pylist()):
        fragments = _plural(orjson.loads(events[i].body)) or [(None, None, None, None, None)]
        takes += [row] * len(fragments)
        positions += range(len(fragments))
        found += fragments
    names = ("experiment", "variation", "subject_id", "sampling_unit", "exposure_version")
    repeated = table.take(pa.array(takes, pa.int64()))
    for n, name in enumerate(names):
        repeated = repeated.set_column(repeated.schema.get_field_index(name), name,
                                       pa.array([f[n] for f in found], pa.string()))
    return repeated.set_column(repeated.schema.get_field_index("j"), "j",
                               pa.array(positions, pa.int64()))


def _tally(table: pa.Table, rows: Rows) -> None:
    """Count rows per experiment and the latest receive time of their enrollment events."""
    named = table.filter(pc.is_valid(table.column("experiment")))
    if not named.num_rows:
        return
    enrolled = pc.and_(pc.fill_null(pc.equal(named.column("action"), ENROLLMENT), False),
                       pc.is_valid(named.column("received")))
    last = pc.if_else(enrolled, named.column("received"), 0)
    grouped = pa.table({"experiment": named.column("experiment"), "last": last}).group_by(
        "experiment").aggregate([("last", "count"), ("last", "max")])
    for name, count, latest in zip(*(grouped.column(c).to_pylist() for c in
                                     ("experiment", "last_count", "last_max")), strict=True):
        tally = rows.tally(name)
        tally.events += count
        tally.last_enrollment_us = max(tally.last_enrollment_us, latest)


def _analysis_table(table: pa.Table) -> pa.Table:
    """The columns of :data:`ANALYSIS_SCHEMA` plus ``stream`` and ``day``."""
    ts = table.column("ts")
    seconds = pa.array(np.floor_divide(ts.to_numpy(), 1_000_000), pa.int64())
    day = pc.cast(pc.cast(pc.cast(seconds, pa.timestamp("s", tz="UTC")), pa.date32()),
                  pa.string())
    context = table.column("action_context")
    data = {
        "event_id": table.column("event_id"),
        "ts": ts, "action": table.column("action"),
        "action_source": table.column("action_source"), "action_context": context,
        "value": _values(context.combine_chunks()), "site": table.column("site"),
        "performer_id": table.column("performer_id"),
        "experiment": table.column("experiment"), "variation": table.column("variation"),
        "subject_id": table.column("subject_id"),
        "subject_key": subject_keys(table.column("subject_id")),
        "sampling_unit": table.column("sampling_unit"),
        "exposure_version": table.column("exposure_version"),
    }
    arrays = [pc.cast(data[f.name], f.type) for f in ANALYSIS_SCHEMA]
    return pa.Table.from_arrays([*arrays, table.column("stream"), day],
                                names=[*ANALYSIS_SCHEMA.names, "stream", "day"])
