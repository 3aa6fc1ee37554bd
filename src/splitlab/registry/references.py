"""Experiments and the layers and holdouts they name, as registry entities.

An ``sl-v2`` experiment row names a layer (``layer.name``) and holdouts (``holdouts[].name``);
each must exist as a ``layer`` or ``holdout`` record, and be in force for as long as the
experiment runs. Rows keep carrying everything inline for the readers that assign without the
registry (SDK, edge, browser): a holdout entry without ``percent`` gets the holdout's, and a
layer given as ``{"name", "bins": N}`` gets the first free range of N bins (a started
experiment's range grows in place). These functions are pure: the store passes the rows it read
in its transaction (:class:`Catalog`) and writes what they return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from splitlab.core.model import format_time, parse_time, parse_window
from splitlab.core.slv2 import BINS, thousandths
from splitlab.errors import ConfigError, ConflictError
from splitlab.registry import layers, rules, views

Window = tuple[datetime | None, datetime | None]


@dataclass(frozen=True, slots=True)
class Catalog:
    """What a write checks against: the layer and holdout rows by name, and every other
    experiment row (the one being written left out)."""

    layers: Mapping[str, Mapping[str, Any]]
    holdouts: Mapping[str, Mapping[str, Any]]
    experiments: Sequence[Mapping[str, Any]]


def _create_hint(kind: str, name: str) -> str:
    if kind == "layer":
        return (f'create it first: POST /api/v1/layers {{"name": "{name}"}}, or '
                f"`splitlab layers create {name}`")
    return (f'create it first: POST /api/v1/holdouts {{"name": "{name}", "percent": P}}, or '
            f"`splitlab holdouts create {name} --percent P`")


def _entity(kind: str, entities: Mapping[str, Mapping[str, Any]], name: str, where: str,
            window: Window) -> Mapping[str, Any]:
    """The named entity, which must be in force until the experiment's end."""
    entity = entities.get(name)
    if entity is None:
        raise ConfigError(where, f"names no {kind} {name!r}; {_create_hint(kind, name)}")
    ends = parse_time(entity.get("end"), "end")
    if ends is not None and (window[1] is None or window[1] > ends):
        raise ConflictError(f"{kind} {name!r} ends at {format_time(ends)}; an experiment that "
                            f"runs after that cannot use it. Name another {kind}")
    return entity


def _window(row: Mapping[str, Any], now: datetime) -> Window:
    return parse_window(rules.with_served_defaults("experiment", row, now))


def _holdouts(row: dict[str, Any], old: Mapping[str, Any] | None, catalog: Catalog,
              window: Window) -> None:
    entries = row.get("holdouts")
    if not isinstance(entries, list):
        return
    kept = [h for h in (old or {}).get("holdouts") or [] if isinstance(h, Mapping)]
    filled: list[Any] = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str):
            filled.append(entry)  # the row's own validation says what is wrong with it
            continue
        where = f"holdouts[{index}]"
        entity = _entity("holdout", catalog.holdouts, name, f"{where}.name", window)
        percent = entry.get("percent")
        if percent is None:
            filled.append({**entry, "percent": entity["percent"]})
            continue
        unchanged = any(h.get("name") == name and h.get("percent") == percent for h in kept)
        if not unchanged and thousandths(percent, f"{where}.percent") != thousandths(
                entity["percent"], "percent"):
            raise ConfigError(f"{where}.percent", f"is {percent} but holdout {name!r} holds "
                                                  f"{entity['percent']} percent; leave percent "
                                                  f"out to use the holdout's")
        filled.append(dict(entry))
    row["holdouts"] = filled


def _range(row: Mapping[str, Any]) -> layers.Range | None:
    value = row.get("layer")
    bounds = value.get("range") if isinstance(value, Mapping) else None
    return (bounds[0], bounds[1]) if isinstance(bounds, list) and len(bounds) == 2 else None


def _layer_name(row: Mapping[str, Any]) -> str | None:
    value = row.get("layer")
    name = value.get("name") if isinstance(value, Mapping) else None
    return name if isinstance(name, str) else None


def _overlaps(one: Window, other: Window) -> bool:
    return ((one[0] is None or other[1] is None or one[0] <= other[1])
            and (other[0] is None or one[1] is None or other[0] <= one[1]))


def _bins(value: Mapping[str, Any]) -> int:
    if "range" in value:
        raise ConfigError("layer", "give either range or bins, not both")
    size = value["bins"]
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= BINS:
        raise ConfigError("layer.bins", f"must be a whole number of bins from 1 to {BINS}, "
                                        f"got {size!r}")
    return size


def _allocate(row: Mapping[str, Any], old: Mapping[str, Any] | None, catalog: Catalog,
              window: Window, now: datetime) -> layers.Range:
    """Where ``row``'s ``layer: {name, bins}`` goes: its own range kept, shrunk at its start or
    grown in place when possible, else (not started) the first free range that fits."""
    name, size = str(row["layer"]["name"]), _bins(row["layer"])
    held = [r for other in catalog.experiments
            if _layer_name(other) == name and (r := _range(other)) is not None
            and _overlaps(window, (parse_time(other.get("start"), "start"),
                                   parse_time(other.get("end"), "end")))]
    own = _range(old) if old is not None and _layer_name(old) == name else None
    started = old is not None and rules.has_started(old, now)
    if own is not None:
        if started and size < own[1] - own[0]:
            raise ConflictError(
                f"experiment {row.get('name')!r} has started; its range [{own[0]}, {own[1]}) "
                f"of layer {name!r} can only grow (units in it would leave), not to {size} bins")
        if size <= own[1] - own[0]:
            return (own[0], own[0] + size)
        around = layers.free_ranges([*held, own])
        grown = layers.grow_in_place(own, around, size)
        if grown is not None:
            return grown
        if started:
            low, high = layers.room(own, around)
            raise ConflictError(
                f"layer {name!r}: experiment {row.get('name')!r} has started, so its range "
                f"[{own[0]}, {own[1]}) can only grow in place, and the space around it that no "
                f"experiment running at the same time holds allows at most {high - low} bins, "
                f"not {size}")
    free = layers.free_ranges(held)
    fit = layers.first_fit(free, size)
    if fit is None:
        best = layers.largest(free)
        largest = (f"the largest free range is [{best[0]}, {best[1]}) ({best[1] - best[0]} "
                   "bins)") if best else "no bin is free"
        raise ConflictError(f"layer {name!r} has no free range of {size} bins while this "
                            f"experiment runs; {largest}")
    return fit


def resolve_experiment(row: Mapping[str, Any], old: Mapping[str, Any] | None, catalog: Catalog,
                       now: datetime) -> dict[str, Any]:
    """``row`` with its holdouts' percents filled in and ``layer.bins`` turned into a range;
    :class:`ConfigError` when it names a layer or holdout that does not exist or a percent
    other than the holdout's, :class:`ConflictError` when one has ended by the experiment's
    end or the layer has no room. Entries of ``old`` left as they were are not re-checked
    against the entity (rows stored before the entities existed)."""
    resolved = dict(row)
    if resolved.get("holdouts") is None and resolved.get("layer") is None:
        return resolved
    window = _window(resolved, now)
    _holdouts(resolved, old, catalog, window)
    layer = resolved.get("layer")
    name = _layer_name(resolved)
    if isinstance(layer, Mapping) and name is not None:
        _entity("layer", catalog.layers, name, "layer.name", window)
        if "bins" in layer:
            low, high = _allocate(resolved, old, catalog, window, now)
            resolved["layer"] = {"name": name, "range": [low, high]}
    return resolved


def users(kind: str, name: str, experiments: Sequence[Mapping[str, Any]]
          ) -> list[Mapping[str, Any]]:
    """The experiment rows that name the layer or holdout ``name``."""
    if kind == "layer":
        return [e for e in experiments if _layer_name(e) == name]
    return [e for e in experiments if any(
        isinstance(h, Mapping) and h.get("name") == name for h in e.get("holdouts") or [])]


def _listing(rows: Sequence[Mapping[str, Any]], now: datetime) -> str:
    return ", ".join(f"{r['name']} ({views.status(r, now)} until {r.get('end')})" for r in rows)


def check_entity_change(kind: str, old: Mapping[str, Any], new: Mapping[str, Any],
                        experiments: Sequence[Mapping[str, Any]], now: datetime
                        ) -> list[Mapping[str, Any]]:
    """Refuse (:class:`ConflictError`) ending a layer or holdout while an experiment that uses
    it runs later, and changing a holdout's percent while a started experiment that has not
    ended lists it. Returns the scheduled experiments whose inline percent must follow."""
    name = str(old["name"])
    using = users(kind, name, experiments)
    ends = parse_time(new.get("end"), "end")
    if ends is not None and new.get("end") != old.get("end"):
        later = [e for e in using if (end := parse_time(e.get("end"), "end")) is None
                 or end > ends]
        if later:
            raise ConflictError(
                f"{kind} {name!r} cannot end at {format_time(ends)}: experiments that use it "
                f"run after that: {_listing(later, now)}. End them or take them out of the "
                f"{kind} first")
    if kind != "holdout" or new.get("percent") == old.get("percent"):
        return []
    running = [e for e in using if views.status(e, now) == "running"]
    if running:
        raise ConflictError(
            f"holdout {name!r}: its percent cannot change while started experiments list it "
            f"(units would move in or out of them): {_listing(running, now)}. Create a new "
            f"holdout instead")
    return [e for e in using if views.status(e, now) == "scheduled"]


def with_percent(row: Mapping[str, Any], holdout: str, percent: object) -> dict[str, Any]:
    """``row`` with the percent of its entry for ``holdout`` replaced."""
    entries = [{**h, "percent": percent} if h.get("name") == holdout else h
               for h in row.get("holdouts") or []]
    return {**row, "holdouts": entries}


def occupancy(name: str, experiments: Sequence[Mapping[str, Any]], now: datetime
              ) -> dict[str, Any]:
    """The experiments holding ranges of layer ``name`` (those that have not ended) and the
    ``free`` ranges no such experiment holds, as the layer's show endpoint reports them."""
    holding = sorted(((r, e) for e in users("layer", name, experiments)
                      if views.status(e, now) != "ended" and (r := _range(e)) is not None),
                     key=lambda pair: pair[0])
    return {
        "bins": BINS,
        "experiments": [{"name": e["name"], "range": list(r), "start": e.get("start"),
                         "end": e.get("end"), "status": views.status(e, now)}
                        for r, e in holding],
        "free": [list(r) for r in layers.free_ranges(r for r, _ in holding)],
    }

