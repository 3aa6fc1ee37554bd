"""What the dashboard's pages show, computed from registry records and results runs (pure).

The templates only lay these values out; everything worth testing is decided here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from splitlab.registry import views
from splitlab.registry.store import Change, Record
from splitlab.results.store import Run
from splitlab.service.ui import charts
from splitlab.service.ui.split_form import condition_text

STATUSES = ("scheduled", "running", "ended")
"""The statuses the list filters by (the registry's: every saved row has a window)."""


@dataclass(frozen=True, slots=True)
class Health:
    """The badge of a results run: ``ok``, ``failing`` or ``none`` (no run yet)."""

    state: str
    label: str
    failing: tuple[str, ...] = ()


def health(run: Run | None) -> Health:
    """The health badge of ``run``'s checks."""
    if run is None:
        return Health("none", "no results yet")
    failing = tuple(c["check"] for c in run.health if not c.get("ok"))
    if failing:
        return Health("failing", f"failing: {', '.join(failing)}", failing)
    return Health("ok", "healthy")


@dataclass(frozen=True, slots=True)
class ListRow:
    """One line of the experiments list."""

    name: str
    status: str
    groups: tuple[str, ...]
    traffic: str
    health: Health
    units: int | None
    computed_at: datetime | None

    @property
    def units_label(self) -> str:
        """The units with thousands separators, or a dash before the first run."""
        return "—" if self.units is None else f"{self.units:,}"

    @property
    def computed_label(self) -> str:
        """When the latest run was computed (minutes, UTC), or a dash before the first run."""
        return "—" if self.computed_at is None else self.computed_at.strftime("%Y-%m-%d %H:%M UTC")


def traffic(row: Mapping[str, Any]) -> str:
    """The sample rate in words: ``"10% (enwiki 50%)"``."""
    rate = row.get("sample_rate") or {}
    default = f"{float(rate.get('default', 0)) * 100:.4g}%"
    overrides = [f"{site} {float(key) * 100:.4g}%" for key, sites in rate.items()
                 if key != "default" for site in sites]
    return f"{default} ({', '.join(overrides)})" if overrides else default


@dataclass(frozen=True, slots=True)
class SplitView:
    """An ``sl-v2`` row's assignment as the experiment page shows it."""

    groups: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...], str], ...]
    """(site, each group's percent, total), ``default`` first."""
    layer: str
    holdouts: str
    targeting: str
    """The condition as JSON, indented when long (empty: everyone)."""


def _decimal(value: Any) -> Decimal:
    """A stored percent exactly as written (a float by its shortest spelling)."""
    return value if isinstance(value, Decimal) else Decimal(repr(value))


def _percent(value: Any) -> str:
    return f"{_decimal(value).normalize():f}%"


def split_view(row: Mapping[str, Any]) -> SplitView | None:
    """The traffic split per site, layer range, holdouts and targeting of an ``sl-v2`` row
    (``None`` for ``tk-v1``)."""
    split = row.get("traffic_split")
    if row.get("algorithm") != "sl-v2" or not isinstance(split, Mapping):
        return None
    groups = tuple(row.get("groups", ()))
    rows = tuple(
        (site, tuple(_percent(split[site].get(g, 0)) for g in groups),
         _percent(sum(_decimal(v) for v in split[site].values())))
        for site in sorted(split, key=lambda s: (s != "default", s)))
    layer = row.get("layer") or {}
    if "range" in layer:
        low, high = layer["range"]
        layer_text = (f"{layer['name']}: bins {low:,} to {high - 1:,} of 100,000 "
                      f"({_percent((high - low) / 1000)} of units)")
    elif "bins" in layer:
        layer_text = f"{layer['name']}: {layer['bins']:,} bins of 100,000"
    else:
        layer_text = ""
    holdouts = ", ".join(h["name"] + (f" ({_percent(h['percent'])})" if "percent" in h else "")
                         for h in row.get("holdouts") or [])
    targeting = row.get("targeting")
    return SplitView(groups, rows, layer_text, holdouts,
                     "" if targeting is None else condition_text(targeting))


def list_rows(records: Sequence[Record], latest: Mapping[str, Run], now: datetime,
              status: str = "", search: str = "") -> list[ListRow]:
    """The list's rows, filtered by ``status`` (empty: all) and by ``search`` in the name."""
    rows = []
    needle = search.strip().lower()
    for record in records:
        state = views.status(record.row, now)
        if (status and state != status) or (needle and needle not in record.name.lower()):
            continue
        run = latest.get(record.name)
        units = sum(run.report.get("groups", {}).values()) if run is not None else None
        rows.append(ListRow(record.name, state, tuple(record.row.get("groups", ())),
                            traffic(record.row), health(run), units,
                            run.computed_at if run is not None else None))
    return rows


def units_chart(runs: Sequence[Run], groups: Sequence[str]) -> Markup | None:
    """The units-per-group chart from runs (newest first, as the store returns them)."""
    points = [(run.computed_at, run.report.get("groups", {})) for run in reversed(runs)]
    return charts.units_over_time(points, groups) if points else None


def effect_rows(report: Mapping[str, Any]) -> list[charts.EffectRow]:
    """One chart row per (metric, treatment) with a relative interval."""
    rows = []
    for metric in report.get("metrics", []):
        for group in metric.get("groups", []):
            ci, estimate = group.get("relative_ci"), group.get("relative_effect")
            if ci is None or estimate is None or None in ci:
                continue
            rows.append(charts.EffectRow(f"{metric['name']} · {group['group']}", estimate,
                                         ci[0], ci[1]))
    return rows


@dataclass(frozen=True, slots=True)
class Revision:
    """One entry of the history, as a readable diff."""

    revision: int
    at: datetime
    actor: str
    action: str
    lines: tuple[tuple[str, str, str], ...]
    """(field, old value, new value) for every changed field, values as compact JSON."""


def _show(value: Any) -> str:
    return "—" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def revisions(history: Sequence[Change]) -> list[Revision]:
    """The history newest first; a creation lists every field it set."""
    out = []
    for change in reversed(history):
        if change.action == "create":
            lines = tuple((k, "", _show(v)) for k, v in sorted(change.row.items())
                          if k not in ("version", "exposure_version") and v not in (None, []))
        else:
            lines = tuple((k, _show(old), _show(new))
                          for k, (old, new) in sorted(change.changes.items()))
        out.append(Revision(change.revision, change.at, change.actor, change.action, lines))
    return out


def qa_links(row: Mapping[str, Any], domain: str | None) -> list[tuple[str, str]]:
    """(group, URL) opening the site with the group forced by ``mpo`` (Test Kitchen's QA
    override), on ``domain``; none without a domain."""
    if domain is None:
        return []
    name = row["name"]
    return [(group, f"https://{domain}/wiki/Special:BlankPage?mpo="
                    f"{quote(f'{name}:{group}', safe=':')}")
            for group in row.get("groups", [])]


def qa_site(row: Mapping[str, Any]) -> str:
    """The site QA links open: the first site with its own rate, else ``enwiki``."""
    rate = row.get("sample_rate") or {}
    sites = sorted(site for key, names in rate.items() if key != "default" for site in names)
    return sites[0] if sites else "enwiki"
