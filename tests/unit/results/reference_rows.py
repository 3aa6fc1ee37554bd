"""The lake writer's rows as they were computed per event in Python (splitlab up to 1727bc2),
kept here as the oracle of the columnar :mod:`splitlab.results.rows`: the same stored events
must give the same rows and tallies (``test_rows.py``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from splitlab.analysis.table import ANALYSIS_SCHEMA, subject_keys
from splitlab.intake.sinks import StoredEvent
from splitlab.results.rows import _NUMBER, ENROLLMENT, Fragment, Tally, _text, micros

# What the columnar code still shares with the per-event one (types, the time and number
# readers) is imported; the per-event logic below is the oracle.


@dataclass(slots=True)
class Rows:
    """Columns of analysis rows (the names of :data:`ANALYSIS_SCHEMA` plus ``stream`` and
    ``day``) and the per-experiment tallies of the events they came from."""

    columns: dict[str, list[Any]] = field(
        default_factory=lambda: {name: [] for name in (*ANALYSIS_SCHEMA.names, "stream", "day")})
    tallies: dict[str, Tally] = field(default_factory=dict)

    def table(self) -> pa.Table:
        """The rows as an Arrow table (``subject_key`` computed from ``subject_id``)."""
        data = dict(self.columns)
        data["subject_key"] = subject_keys(pa.array(data["subject_id"], pa.string()))
        arrays = [data["subject_key"] if f.name == "subject_key" else pa.array(data[f.name], f.type)
                  for f in ANALYSIS_SCHEMA]
        names = [*ANALYSIS_SCHEMA.names, "stream", "day"]
        return pa.Table.from_arrays(
            [*arrays, pa.array(data["stream"], pa.string()), pa.array(data["day"], pa.string())],
            names=names)

    def tally(self, experiment: str) -> Tally:
        return self.tallies.setdefault(experiment, Tally())


NO_EXPERIMENT: Fragment = (None, None, None, None, None)


def _fragments(event: Mapping[str, Any]) -> list[Fragment]:
    """``(experiment, group, subject_id, sampling_unit, exposure_version)`` per experiment the
    event is about (see the module docstring)."""
    single = event.get("experiment")
    if isinstance(single, Mapping) and isinstance(single.get("enrolled"), str):
        return [(single["enrolled"], _text(single.get("assigned")),
                 _text(single.get("subject_id")), _text(single.get("sampling_unit")),
                 _text(single.get("exposure_version")))]
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


def _errored_experiments(event: Mapping[str, Any]) -> list[str]:
    """The experiments an error event's ``raw_event`` names (either fragment)."""
    raw = event.get("raw_event")
    if not isinstance(raw, str):
        return []
    try:
        original = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(original, Mapping):
        return []
    return [name for name, *_ in _fragments(original) if name is not None]


def rows_of(events: Iterable[StoredEvent], error_stream: str) -> Rows:
    """The analysis rows of ``events`` (each stored event is one or more rows)."""
    rows = Rows()
    columns = rows.columns
    for stored in events:
        try:
            event = orjson.loads(stored.body)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(event, dict):
            continue
        received = micros(stored.dt)
        ts = micros(event.get("dt"))
        ts = received if ts is None else ts
        if ts is None:
            continue
        action = _text(event.get("action"))
        context = event.get("action_context")
        context = context if isinstance(context, str) else None
        site = event.get("mediawiki")
        performer = event.get("performer")
        user = performer.get("id") if isinstance(performer, dict) else None
        is_error = stored.stream == error_stream
        fragments = [] if is_error else _fragments(event)
        if is_error:
            for errored in _errored_experiments(event):
                rows.tally(errored).errors += 1
        common = {
            "event_id": stored.id, "ts": ts, "action": action,
            "action_source": _text(event.get("action_source")), "action_context": context,
            "value": float(context) if context is not None and _NUMBER.match(context) else None,
            "site": _text(site.get("database")) if isinstance(site, dict) else None,
            "performer_id": user if isinstance(user, int) and not isinstance(user, bool)
            and -(2**63) <= user < 2**63 else None,
            "stream": stored.stream,
            "day": datetime.fromtimestamp(ts // 1_000_000, UTC).strftime("%Y-%m-%d"),
        }
        for name, group, subject, unit, version in fragments or [NO_EXPERIMENT]:
            for key, value in common.items():
                columns[key].append(value)
            columns["experiment"].append(name)
            columns["variation"].append(group)
            columns["subject_id"].append(subject)
            columns["sampling_unit"].append(unit)
            columns["exposure_version"].append(version)
            if name is not None:
                tally = rows.tally(name)
                tally.events += 1
                if action == ENROLLMENT and received is not None:
                    tally.last_enrollment_us = max(tally.last_enrollment_us, received)
    return rows
