"""The read formats of the registry (pure functions of stored rows and "now").

- ``config`` / ``mediawiki``: the Test Kitchen rows of the active experiments, as application
  servers read them.
- ``config`` / ``varnish``: per experiment, per site, each group's bin range out of 100000, for an
  edge that buckets ``floor(h * 100000)`` of the ``tk-v1`` hash ``h`` (DESIGN.md).
- ``analytics``: every experiment, active or not, with its status and its phases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from splitlab.core.model import SampleRate, parse_time, window_changes, window_status

BINS = 100_000
"""The edge's bucket count: bins ``[start, end)`` out of this many."""

FORMATS = ("config", "analytics")
AUTHORITIES = ("mediawiki", "varnish")


def status(row: Mapping[str, Any], now: datetime) -> str:
    """``scheduled`` (starts later), ``running`` or ``ended``: running means
    ``start <= now <= end``, Test Kitchen's window (the SDK's ``Experiment.is_active``)."""
    return window_status(parse_time(row.get("start"), "start"), parse_time(row.get("end"), "end"),
                         now)


def active(rows: Iterable[Mapping[str, Any]], now: datetime) -> list[Mapping[str, Any]]:
    """The rows running at ``now`` (started, not ended)."""
    return [row for row in rows if status(row, now) == "running"]


def next_boundary(rows: Iterable[Mapping[str, Any]], now: datetime) -> datetime | None:
    """The first instant after ``now`` at which the active set changes by itself: a start, or
    the instant just past an end."""
    moments = [change for row in rows for change in window_changes(
        parse_time(row.get("start"), "start"), parse_time(row.get("end"), "end"))]
    future = [m for m in moments if m > now]
    return min(future) if future else None


def bin_ranges(groups: Sequence[str], rate: float) -> dict[str, list[int]]:
    """Each group's ``[start, end)`` bins: group ``i`` of ``n`` holds ``h`` in
    ``[i/n, (i + rate)/n)``, rounded to whole bins."""
    n = max(1, len(groups))
    return {
        group: [round(i * BINS / n), round((i + rate) * BINS / n)]
        for i, group in enumerate(groups)
    }


def varnish_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The edge's view of an experiment row: bin ranges for the default rate and per site."""
    rate = SampleRate.parse(row["sample_rate"])
    groups = row["groups"]
    bins = {"default": bin_ranges(groups, rate.default)}
    for site in sorted(rate.by_site):
        bins[site] = bin_ranges(groups, rate.by_site[site])
    return {
        "name": row["name"],
        "user_identifier_type": row["user_identifier_type"],
        "groups": list(groups),
        "bins": bins,
        "exposure_version": row["exposure_version"],
        "phase_index": row.get("phase_index", 0),
        "version": row["version"],
    }


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
