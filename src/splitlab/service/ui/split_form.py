"""The ``sl-v2`` part of the experiment form: traffic split table, layer, holdouts, targeting.

The form is flat text fields, so that it works without JavaScript:

- ``site-<r>`` is row ``r``'s site (row 0 is always ``default``) and ``pct-<r>-<c>`` the percent
  of the ``c``-th group (the groups field's order) on it; an empty cell is 0 %, and a row with
  neither a site nor a percent is ignored.
- ``layer_name`` with ``layer_lo`` and ``layer_hi`` (bins ``[lo, hi)`` of 100000), or with
  ``layer_bins`` (a number of bins for the registry to allocate).
- ``holdouts``: ``name`` or ``name:percent``, comma-separated.
- ``targeting``: a GrowthBook condition as JSON.

Reading a field that is not even a number or JSON raises :class:`ConfigError` naming the row
field it belongs to; everything else is the registry's to check (``Experiment.from_config`` and
its rules), and its errors come back through :func:`describe`.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from splitlab.core.slv2 import DEFAULT_SITE
from splitlab.core.targeting import check_condition
from splitlab.errors import ConfigError

FIELDS = ("traffic_split", "layer", "holdouts", "targeting")
"""The form fields (and row fields) of this part."""
ROW_FIELDS = ("algorithm", *FIELDS)
_SITE = re.compile(r"site-(\d+)")
_KEYS = re.compile(r"\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\d+)\]")
_SITE_CONFLICT = re.compile(r"on site ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")


def number_text(value: object) -> str:
    """A stored number as the form shows it (``5``, ``2.5``)."""
    return str(value) if isinstance(value, int) else repr(value)


def _number(text: str, where: str, what: str) -> int | float:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(where, f"{text!r} is not a number ({what})") from None
    if not value.is_finite():
        raise ConfigError(where, f"{text!r} is not a number ({what})")
    return int(value) if value == value.to_integral_value() else float(text)


@dataclass(frozen=True, slots=True)
class SiteRow:
    """One row of the split table as posted: its index, site and the text of every cell."""

    index: int
    site: str
    cells: tuple[str, ...]

    @property
    def blank(self) -> bool:
        return not self.site and not any(self.cells)


def site_rows(values: Mapping[str, str], width: int) -> list[SiteRow]:
    """The table's rows in index order (``width`` cells each; row 0 is ``default``)."""
    indices = sorted({int(m.group(1)) for k in values if (m := _SITE.fullmatch(k))} | {0})
    return [SiteRow(i, DEFAULT_SITE if i == 0 else values.get(f"site-{i}", "").strip(),
                    tuple(values.get(f"pct-{i}-{c}", "").strip() for c in range(width)))
            for i in indices]


def _row_values(rows: Sequence[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """``site-<r>`` and ``pct-<r>-<c>`` for ``rows`` (renumbered from 0)."""
    out: dict[str, str] = {}
    for index, (site, cells) in enumerate(rows):
        out[f"site-{index}"] = site
        out.update({f"pct-{index}-{c}": text for c, text in enumerate(cells)})
    return out


def _equal_percent(rate: float, groups: int) -> str:
    """``100 * rate / groups`` when it has at most 3 decimals (then ``sl-v2`` gives every unit
    the answer ``tk-v1`` gives), else empty."""
    share = Decimal(repr(rate)) * 100 / max(groups, 1)
    if share * 1000 != (share * 1000).to_integral_value():
        return ""
    return number_text(int(share) if share == share.to_integral_value() else float(share))


def _rates(sample_rate: object) -> list[tuple[str, float]]:
    """A ``tk-v1`` sample rate as (site, rate) pairs, ``default`` first."""
    if isinstance(sample_rate, (int, float)):
        return [(DEFAULT_SITE, float(sample_rate))]
    if not isinstance(sample_rate, Mapping):
        return []
    return [(DEFAULT_SITE, float(sample_rate.get(DEFAULT_SITE, 0))), *sorted(
        (site, float(key)) for key, sites in sample_rate.items() if key != DEFAULT_SITE
        for site in sites)]


def values_of(row: Mapping[str, Any], groups: Sequence[str]) -> dict[str, str]:
    """The form's ``sl-v2`` values for a stored row. A ``tk-v1`` row's table is filled with its
    equal split (each group ``100·rate/n`` percent per site), so that choosing ``sl-v2`` and
    saving moves no unit."""
    split = row.get("traffic_split")
    if isinstance(split, Mapping):
        rows = [(site, [number_text(split[site][g]) if g in split[site] else "" for g in groups])
                for site in sorted(split, key=lambda s: (s != DEFAULT_SITE, s))]
    else:
        rows = [(site, [_equal_percent(rate, len(groups))] * len(groups))
                for site, rate in _rates(row.get("sample_rate"))]
    if not rows or rows[0][0] != DEFAULT_SITE:
        rows.insert(0, (DEFAULT_SITE, [""] * len(groups)))
    layer = row.get("layer") or {}
    bounds = layer.get("range") or ["", ""]
    holdouts = row.get("holdouts") or []
    targeting = row.get("targeting")
    return {
        **_row_values(rows),
        "layer_name": str(layer.get("name", "")),
        "layer_lo": str(bounds[0]), "layer_hi": str(bounds[1]),
        "layer_bins": str(layer.get("bins", "")),
        "holdouts": ", ".join(h["name"] + (f":{number_text(h['percent'])}" if "percent" in h
                                           else "") for h in holdouts),
        "targeting": condition_text(targeting) if targeting is not None else "",
    }


def condition_text(condition: object) -> str:
    """A condition as the textarea shows it: one line when short, else indented."""
    short = json.dumps(condition, ensure_ascii=False)
    return short if len(short) <= 100 else json.dumps(condition, ensure_ascii=False, indent=2)


def _traffic_split(values: Mapping[str, str], groups: Sequence[str]) -> dict[str, Any]:
    split: dict[str, dict[str, int | float]] = {}
    for row in site_rows(values, len(groups)):
        if row.blank:
            continue
        where = f"traffic_split[{row.site!r}]"
        if not row.site:
            raise ConfigError(where, "has percents but no site name (for example enwiki)")
        if row.site in split:
            raise ConfigError(where, "is listed twice; give each site one row")
        split[row.site] = {
            group: _number(text, f"{where}[{group!r}]", "a percent from 0 to 100")
            for group, text in zip(groups, row.cells, strict=True) if text}
    return split


def _layer(values: Mapping[str, str]) -> dict[str, Any] | None:
    name, low, high, bins = (values.get(f"layer_{k}", "").strip()
                             for k in ("name", "lo", "hi", "bins"))
    if not (name or low or high or bins):
        return None
    if bins and (low or high):
        raise ConfigError("layer", "give a range (from, to) or a number of bins, not both")
    if bins:
        return {"name": name, "bins": _number(bins, "layer.bins", "a whole number of bins")}
    if not (low and high):
        raise ConfigError("layer.range", "give the first bin and the bin after the last "
                                         "(0 to 100000), or a number of bins")
    return {"name": name, "range": [_number(low, "layer.range", "a bin from 0 to 100000"),
                                    _number(high, "layer.range", "a bin from 0 to 100000")]}


def _holdout_entries(text: str) -> list[tuple[str, str | None]]:
    """(name, percent text or ``None``) of each ``name[:percent]`` entry."""
    entries = (p.strip() for p in text.replace("\n", ",").split(","))
    return [(name.strip(), percent.strip() if colon else None)
            for name, colon, percent in (e.partition(":") for e in entries if e)]


def _holdouts(text: str) -> list[dict[str, Any]]:
    holdouts: list[dict[str, Any]] = []
    for index, (name, percent) in enumerate(_holdout_entries(text)):
        holdout: dict[str, Any] = {"name": name}
        if percent is not None:
            holdout["percent"] = _number(percent, f"holdouts[{index}].percent",
                                         "a percent from 0 to 100")
        holdouts.append(holdout)
    return holdouts


def json_object(text: str, where: str) -> dict[str, Any] | None:
    """A JSON object typed in a form field (``None`` when the field is empty); raises
    :class:`ConfigError` on ``where`` saying what is wrong otherwise."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(where, f"is not valid JSON: {error.msg} (line {error.lineno}, "
                                 f"column {error.colno})") from None
    if not isinstance(value, dict):
        raise ConfigError(where, 'must be a JSON object, like {"platform": "mobile"}')
    return value


def _targeting(text: str) -> Any:
    condition = json_object(text, "targeting")
    if condition is not None:
        check_condition(condition)
    return condition


def row_fields(values: Mapping[str, str], groups: Sequence[str]) -> dict[str, Any]:
    """The ``sl-v2`` fields of the row the form describes (the gates only when set)."""
    row: dict[str, Any] = {"algorithm": "sl-v2",
                           "traffic_split": _traffic_split(values, groups)}
    layer = _layer(values)
    if layer is not None:
        row["layer"] = layer
    holdouts = _holdouts(values.get("holdouts", ""))
    if holdouts:
        row["holdouts"] = holdouts
    targeting = _targeting(values.get("targeting", ""))
    if targeting is not None:
        row["targeting"] = targeting
    return row


def edited(values: Mapping[str, str], groups: Sequence[str], op: str) -> tuple[
        dict[str, str], str]:
    """``values`` after the table button ``op`` (``add-site``, ``remove-<r>``, ``refresh``),
    rows renumbered, and the id of the control to focus next."""
    rows = [(r.site, list(r.cells)) for r in site_rows(values, len(groups))
            if not (op == f"remove-{r.index}" and r.index != 0)]
    focus = "add-site"
    if op == "add-site":
        rows.append(("", [""] * len(groups)))
        focus = f"site-{len(rows) - 1}"
    elif op == "refresh":
        focus = "pct-0-0" if groups else "groups"
    kept = {k: v for k, v in values.items() if not (k.startswith(("site-", "pct-")))}
    return {**kept, **_row_values(rows)}, focus


def _keys(field: str) -> list[Any]:
    return [ast.literal_eval(key) for key in _KEYS.findall(field)]


def describe(field: str, reason: str, values: Mapping[str, str]) -> str:
    """A registry error on ``field`` (inside this part) in the words shown next to it:
    ``dewiki, treatment: has more than 3 decimals``, ``other: percent must be ...``."""
    base = field.split("[")[0].split(".")[0]
    rest = field[len(base):].lstrip(".")
    if not rest:
        return reason
    if base == "traffic_split":
        return f"{', '.join(str(k) or '(a row without a site)' for k in _keys(rest))}: {reason}"
    if base == "holdouts":
        keys = _keys(rest)
        names = [name for name, _ in _holdout_entries(values.get("holdouts", ""))]
        index = keys[0] if keys and isinstance(keys[0], int) else len(names)
        detail = rest.partition(".")[2]
        detail = "" if detail == "name" else detail  # the reason names the holdout already
        name = names[index] if index < len(names) else "a holdout"
        return f"{name or '(no name)'}: {detail + ' ' if detail else ''}{reason}"
    return f"{rest} {reason}"


def error_sites(field: str) -> set[str]:
    """The sites (table rows) a ``traffic_split[...]`` error names."""
    keys = _keys(field) if field.startswith("traffic_split[") else []
    return {keys[0]} if keys and isinstance(keys[0], str) else set()


def conflict_field(message: str) -> tuple[str, set[str]]:
    """The form field a refusal of the traffic guard (409) is about, and the sites it names:
    the registry says ``on site 'x'`` or ``on sites without their own entry``; layer refusals
    name the layer."""
    found = _SITE_CONFLICT.search(message)
    if found:
        return "traffic_split", {ast.literal_eval(found.group(1))}
    if "sites without their own entry" in message:
        return "traffic_split", {DEFAULT_SITE}
    if "layer" in message:
        return "layer", set()
    return "", set()


@dataclass(frozen=True, slots=True)
class TableRow:
    """A row of the split table as the template draws it."""

    index: int
    site: str
    cells: tuple[str, ...]
    total: str
    over: bool
    invalid: bool


def table(values: Mapping[str, str], groups: Sequence[str],
          invalid: set[str]) -> list[TableRow]:
    """The split table's rows with each row's sum (of the cells that are numbers)."""
    rows = []
    for row in site_rows(values, len(groups)):
        total = Decimal(0)
        for text in row.cells:
            try:
                cell = Decimal(text) if text else Decimal(0)
            except InvalidOperation:
                continue
            total += cell if cell.is_finite() else 0
        shown = f"{total.normalize():f}" if total else "0"
        rows.append(TableRow(row.index, row.site, row.cells, shown, total > 100,
                             row.site in invalid))
    return rows
