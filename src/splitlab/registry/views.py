"""The read formats of the registry (pure functions of stored rows and "now").

- ``config`` / ``mediawiki``: the Test Kitchen rows of the active experiments, as application
  servers read them.
- ``config`` / ``varnish``: the edge config of Wikimedia's CDN (:mod:`splitlab.registry.edge`).
- ``analytics``: every experiment, active or not, with its status and its phases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from splitlab.core.model import parse_time

FORMATS = ("config", "analytics")
AUTHORITIES = ("mediawiki", "varnish")


def status(row: Mapping[str, Any], now: datetime) -> str:
    """``scheduled`` (starts later), ``running`` or ``ended``: running means ``now`` lies in
    ``[start, end)``, a missing bound being no bound (the SDK's ``Experiment.is_active``)."""
    start = parse_time(row.get("start"), "start")
    end = parse_time(row.get("end"), "end")
    if end is not None and end <= now:
        return "ended"
    if start is not None and start > now:
        return "scheduled"
    return "running"


def active(rows: Iterable[Mapping[str, Any]], now: datetime) -> list[Mapping[str, Any]]:
    """The rows running at ``now`` (started, not ended)."""
    return [row for row in rows if status(row, now) == "running"]


def next_boundary(rows: Iterable[Mapping[str, Any]], now: datetime) -> datetime | None:
    """The earliest start or end after ``now``: when the active set next changes by itself."""
    moments = [parse_time(row.get(field), field) for row in rows for field in ("start", "end")]
    future = [m for m in moments if m is not None and m > now]
    return min(future) if future else None


_PHASE_FIELDS = ("phase_index", "groups", "user_identifier_type", "sample_rate", "start", "end",
                 "exposure_version")


def phases(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per ``phase_index`` seen in the history rows (oldest first), each as it last
    stood: what an analysis needs to split the data by phase."""
    latest: dict[int, Mapping[str, Any]] = {}
    for row in history:
        latest[int(row.get("phase_index", 0))] = row
    return [{f: latest[i].get(f) for f in _PHASE_FIELDS} for i in sorted(latest)]


def analytics_row(row: Mapping[str, Any], history: Sequence[Mapping[str, Any]],
                  now: datetime) -> dict[str, Any]:
    """The analysis side's view: the row, its status and its phases."""
    view = dict(row)
    view["status"] = status(row, now)
    if "groups" in row:
        view["phases"] = phases(history or [row])
    return view
