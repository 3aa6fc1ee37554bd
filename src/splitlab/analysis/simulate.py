"""A seeded simulator of experiment events in the web base shape, with known truths and faults.

Units are integers ``1..units``; each is given a site and assigned with the real ``tk-v1`` core
(:func:`~splitlab.core.assignment.assign_batch`), so subject ids and groups are exactly what a
client would log. Every in-sample unit then produces, around its first enrollment time:

- ``1 + Poisson(0.3)`` ``experiment_enrollment`` events (the first one counts; ``action_source``
  drawn from :data:`ACTION_SOURCES`), and an ``experiment_exposure`` with probability 0.9;
- ``Poisson(clicks * lift * a)`` ``click`` events after enrollment and ``Poisson(clicks * a)``
  in the ``pre_days`` before it, where ``a ~ Gamma(2, 1/2)`` is the unit's activity (mean 1, so
  the pre-period count is a useful CUPED covariate);
- with probability ``conversion * lift`` (capped at 1), ``1 + Poisson(0.5)`` ``edit_saved``
  events whose ``action_context`` is a value drawn from an exponential of mean ``value_mean``.

``lift`` is the group's relative effect (1 for control), so the true relative effect of the
group on clicks per unit, on the share of units with an edit and on edit value per unit is
``lift - 1``, and on value per click it is 0. A :class:`Fault` drops a share of one group's
enrollment and exposure events; ``mixed_share`` of units also log one enrollment in a wrong group.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from splitlab.analysis.table import EVENT_SCHEMA
from splitlab.core.assignment import OUT_OF_SAMPLE, SUBJECT_ID_LENGTH, assign_batch
from splitlab.core.model import Experiment

SCHEMA_ID = "/analytics/product_metrics/web/base/2.1.0"
ACTION_SOURCES = ("page_view", "api", "account_creation", "job")
_SOURCE_WEIGHTS = (0.7, 0.1, 0.1, 0.1)
SITES = ("enwiki", "dewiki", "frwiki", "jawiki")
_SITE_WEIGHTS = (0.5, 0.2, 0.2, 0.1)
_DAY_US = 86_400_000_000
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class Fault:
    """Lose ``lost_share`` of ``group``'s units' enrollment and exposure events."""

    group: str
    lost_share: float


@dataclass(frozen=True, slots=True)
class Simulation:
    """What to simulate. ``lifts`` maps a group to its relative effect (missing: 1, no effect)."""

    experiment: Experiment
    units: int
    seed: int = 0
    days: int = 14
    pre_days: int = 14
    clicks: float = 3.0
    conversion: float = 0.1
    value_mean: float = 20.0
    lifts: Mapping[str, float] = field(default_factory=dict)
    fault: Fault | None = None
    mixed_share: float = 0.0
    chunk_units: int = 250_000

    def __post_init__(self) -> None:
        """Refuse what cannot be simulated, with the reason (``ValueError``)."""
        groups = self.experiment.groups
        if self.units < 0:
            raise ValueError(f"units must be at least 0, got {self.units}")
        if not 0.0 <= self.mixed_share <= 1.0:
            raise ValueError(f"the mixed share must lie in [0, 1], got {self.mixed_share}")
        if not 0.0 <= self.conversion <= 1.0:
            raise ValueError(f"the base conversion rate must lie in [0, 1], got {self.conversion}")
        unknown = sorted(set(self.lifts) - set(groups))
        if unknown or any(lift < 0 for lift in self.lifts.values()):
            raise ValueError(f"lifts must be non-negative and name groups of the experiment "
                             f"({', '.join(groups)}); got {dict(self.lifts)}")
        if self.fault is not None:
            if self.fault.group not in groups:
                raise ValueError(f"fault group {self.fault.group!r} is not a group of the "
                                 "experiment")
            if not 0.0 <= self.fault.lost_share <= 1.0:
                raise ValueError(f"the lost share must lie in [0, 1], got {self.fault.lost_share}")

    def lift(self, group: str) -> float:
        return self.lifts.get(group, 1.0)


def simulate(spec: Simulation) -> Iterator[pa.Table]:
    """Yield the events of ``spec`` as Arrow tables of :data:`EVENT_SCHEMA`, one per chunk."""
    rng = np.random.default_rng(spec.seed)
    start = spec.experiment.start or datetime(2026, 11, 1, tzinfo=UTC)
    start_us = int(start.timestamp()) * 1_000_000
    for first in range(1, spec.units + 1, spec.chunk_units):
        last = min(first + spec.chunk_units, spec.units + 1)
        yield _chunk(spec, rng, np.arange(first, last, dtype=np.int64), start_us)


@dataclass(frozen=True, slots=True)
class _Units:
    ids: np.ndarray  # int64 unit identifiers
    subjects: np.ndarray  # (n, 64) uint8 subject id characters
    groups: np.ndarray  # int group codes
    sites: np.ndarray  # int site codes
    enrolled_us: np.ndarray  # int64 first enrollment time


def _assign(spec: Simulation, rng: np.random.Generator, ids: np.ndarray, start_us: int) -> _Units:
    sites = rng.choice(len(SITES), size=len(ids), p=_SITE_WEIGHTS)
    subjects = np.empty((len(ids), SUBJECT_ID_LENGTH), dtype=np.uint8)
    groups = np.empty(len(ids), dtype=np.int64)
    for code, site in enumerate(SITES):
        where = np.flatnonzero(sites == code)
        batch = assign_batch(ids[where].tolist(), spec.experiment, site)
        raw = np.frombuffer(batch.joined_subject_ids.encode("ascii"), dtype=np.uint8)
        subjects[where] = raw.reshape(-1, SUBJECT_ID_LENGTH)
        groups[where] = np.frombuffer(batch.group_codes, dtype=np.uint8)
    keep = groups != OUT_OF_SAMPLE
    enrolled = start_us + rng.integers(0, spec.days * _DAY_US, size=int(keep.sum()))
    return _Units(ids[keep], subjects[keep], groups[keep], sites[keep], enrolled)


def _chunk(spec: Simulation, rng: np.random.Generator, ids: np.ndarray, start_us: int) -> pa.Table:
    units = _assign(spec, rng, ids, start_us)
    n = len(units.ids)
    lift = np.array([spec.lift(g) for g in spec.experiment.groups])[units.groups]
    activity = rng.gamma(2.0, 0.5, size=n)
    end_us = start_us + spec.days * _DAY_US
    lost = np.zeros(n, dtype=bool)
    if spec.fault is not None:
        hit = units.groups == spec.experiment.groups.index(spec.fault.group)
        lost = hit & (rng.random(n) < spec.fault.lost_share)
    parts: list[_Events] = []
    # Enrollments: the first at the enrollment time, repeats later; lost units log none.
    repeats = 1 + rng.poisson(0.3, size=n)
    owner = np.repeat(np.flatnonzero(~lost), repeats[~lost])
    first = np.r_[True, owner[1:] != owner[:-1]] if len(owner) else np.zeros(0, dtype=bool)
    when = np.where(first, units.enrolled_us[owner], _after(rng, units.enrolled_us[owner], end_us))
    source = rng.choice(len(ACTION_SOURCES), size=len(owner), p=_SOURCE_WEIGHTS)
    parts.append(_Events(owner, when, "experiment_enrollment", source=source))
    if spec.mixed_share > 0:
        mixed = np.flatnonzero(~lost & (rng.random(n) < spec.mixed_share))
        wrong = (units.groups[mixed] + 1) % len(spec.experiment.groups)
        when = _after(rng, units.enrolled_us[mixed], end_us)
        parts.append(_Events(mixed, when, "experiment_enrollment", source=np.zeros_like(mixed),
                             groups=wrong))
    exposed = np.flatnonzero(~lost & (rng.random(n) < 0.9))
    parts.append(_Events(exposed, _after(rng, units.enrolled_us[exposed], end_us),
                         "experiment_exposure"))
    clicker = np.repeat(np.arange(n), rng.poisson(spec.clicks * lift * activity))
    parts.append(_Events(clicker, _after(rng, units.enrolled_us[clicker], end_us), "click"))
    before = np.repeat(np.arange(n), rng.poisson(spec.clicks * activity))
    pre_start = units.enrolled_us[before] - spec.pre_days * _DAY_US
    parts.append(_Events(before, rng.integers(pre_start, units.enrolled_us[before]), "click"))
    converted = rng.random(n) < np.minimum(1.0, spec.conversion * lift)
    editor = np.repeat(np.arange(n), converted * (1 + rng.poisson(0.5, size=n)))
    values = np.round(rng.exponential(spec.value_mean, size=len(editor)), 2)
    parts.append(_Events(editor, _after(rng, units.enrolled_us[editor], end_us), "edit_saved",
                         values=values))
    return _table(spec, rng, units, parts)


def _after(rng: np.random.Generator, since: np.ndarray, end_us: int) -> np.ndarray:
    """A uniform time in ``(since, end]`` for each element."""
    offsets: np.ndarray = (rng.random(len(since)) * (end_us - since)).astype(np.int64)
    result: np.ndarray = since + 1 + offsets
    return result


@dataclass(frozen=True, slots=True)
class _Events:
    owner: np.ndarray  # index into the chunk's units
    when: np.ndarray  # int64 microseconds since the epoch
    action: str
    source: np.ndarray | None = None  # index into ACTION_SOURCES
    values: np.ndarray | None = None
    groups: np.ndarray | None = None  # group codes, when not the unit's own


def _table(spec: Simulation, rng: np.random.Generator, units: _Units, parts: list[_Events]) -> (
    pa.Table
):
    exp = spec.experiment
    owner = np.concatenate([p.owner for p in parts])
    when = np.concatenate([p.when for p in parts])
    count = len(owner)
    actions = [p.action for p in parts]
    action = _dictionary(np.repeat(np.arange(len(parts)), [len(p.owner) for p in parts]), actions)
    source = np.concatenate([
        p.source if p.source is not None else np.full(len(p.owner), -1) for p in parts
    ])
    context = pa.concat_arrays([
        pa.array(p.values).cast(pa.string()) if p.values is not None
        else pa.nulls(len(p.owner), pa.string()) for p in parts
    ])
    group = np.concatenate([
        p.groups if p.groups is not None else units.groups[p.owner] for p in parts
    ])
    dt = _iso(when)
    sampling_unit = exp.user_identifier_type
    logged_in = sampling_unit == "mw-user"
    performer_id = pa.array(units.ids[owner], mask=np.full(count, sampling_unit != "mw-user"))
    sites = units.sites[owner]
    meta = pa.StructArray.from_arrays(
        [_uuids(rng, count), _iso(when + rng.integers(1, 2_000_000, size=count)),
         _constant(count, exp.stream_name or "product_metrics.web_base"),
         _dictionary(sites, [f"{s[:2]}.wikipedia.org" for s in SITES])],
        names=_names("meta"),
    )
    experiment = pa.StructArray.from_arrays(
        [_constant(count, exp.name), _dictionary(group, list(exp.groups)),
         _fixed_strings(units.subjects[owner]), _constant(count, sampling_unit),
         _constant(count, "default"), _constant(count, exp.exposure_version)],
        names=_names("experiment"),
    )
    columns = [
        _constant(count, exp.schema_id or SCHEMA_ID), meta, dt, action,
        pa.DictionaryArray.from_arrays(pa.array(source.astype(np.int32), mask=source < 0),
                                       list(ACTION_SOURCES)),
        context,
        pa.StructArray.from_arrays([_dictionary(sites, list(SITES))],
                                   names=_names("mediawiki")),
        pa.StructArray.from_arrays([performer_id, _constant_bool(count, logged_in)],
                                   names=_names("performer")),
        experiment,
    ]
    return pa.Table.from_arrays(columns, names=EVENT_SCHEMA.names)


def _names(column: str) -> list[str]:
    return [f.name for f in EVENT_SCHEMA.field(column).type]


def _constant_bool(count: int, value: bool) -> pa.Array:
    return pa.array(np.full(count, value))


def _constant(count: int, value: str) -> pa.Array:
    return _dictionary(np.zeros(count, dtype=np.int32), [value])


def _dictionary(codes: np.ndarray, values: list[str]) -> pa.Array:
    """Low-cardinality text as a dictionary array (Parquet stores it dictionary-encoded)."""
    return pa.DictionaryArray.from_arrays(codes.astype(np.int32), values)


def _fixed_strings(chars: np.ndarray) -> pa.Array:
    """A string array from an ``(n, width)`` array of ASCII codes, without Python objects."""
    count, width = chars.shape
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets),
                                       pa.py_buffer(np.ascontiguousarray(chars)))


def _uuids(rng: np.random.Generator, count: int) -> pa.Array:
    """Random version-4 UUIDs in their 36-character text form."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = np.empty((count, 32), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 0x0F]
    text = np.full((count, 36), ord("-"), dtype=np.uint8)
    for lo, hi, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at : at + hi - lo] = digits[:, lo:hi]
    return _fixed_strings(text)


def _iso(micros: np.ndarray) -> pa.Array:
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
    return _fixed_strings(text)


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
                    out.write(json.dumps(_without_nulls(row), separators=(",", ":")) + "\n")
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


def _without_nulls(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _without_nulls(v) if isinstance(v, dict) else v for k, v in row.items() if v is not None
    }
