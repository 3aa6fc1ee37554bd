"""Validation and the rules that protect running experiments.

Rows created in the registry follow stricter rules than configs found in the wild: unknown fields
are refused, and experiment, instrument and group names follow the enrollment header's grammar
(DESIGN.md, Wire contracts) so every registry experiment can travel in that header.
``version`` and ``exposure_version`` are managed by the registry: given ones are ignored.

Every stored row can be served to Test Kitchen's MediaWiki extension as it is (docs/registry.md,
"Serving MediaWiki's Test Kitchen extension"): it always carries RFC 3339 ``start`` and ``end``, a
``stream_name`` and a ``schema_id`` (instruments also a ``sample_unit``). A row saved without them
gets the defaults of :func:`with_served_defaults`; a value Test Kitchen could not use is refused
with the field and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from splitlab.core.exposure import DEFAULT_SCHEMA, exposure_version
from splitlab.core.headers import EXPERIMENT_NAME, GROUP_NAME
from splitlab.core.model import (
    DEFAULT_STREAM,
    Experiment,
    SampleRate,
    format_time,
    optional_str,
    parse_time,
    parse_window,
    string_list,
)
from splitlab.core.slv2 import ALGORITHM as SL_V2
from splitlab.core.slv2 import BINS, percent_of, thousandths
from splitlab.errors import ConfigError, ConflictError
from splitlab.registry import traffic_guard

MANAGED_FIELDS = frozenset({"version", "exposure_version"})
"""Fields the registry sets itself; values sent by clients are ignored."""

INSTRUMENT_FIELDS = frozenset(
    {"name", "sample_rate", "sample_unit", "start", "end", "stream_name", "schema_id",
     "contextual_attributes"}
)
ENTITY_KINDS = ("layer", "holdout")
"""Kinds that experiment rows name (``layer.name``, ``holdouts[].name``): no start, no groups."""
ENTITY_FIELDS = {"layer": frozenset({"name", "description", "end"}),
                 "holdout": frozenset({"name", "percent", "description", "end"})}
OPEN_END = "9999-12-31T23:59:59Z"
"""The ``end`` of a row saved without one: it runs until it is ended (Test Kitchen needs a date)."""
SAMPLE_UNITS = ("session", "pageview")
"""The instrument sample units Test Kitchen's client samples by (``session`` when none is given,
as Test Kitchen itself assumes)."""
LOCKED_AFTER_START = ("user_identifier_type", "groups", "start")
"""Changing the first two on a started experiment would move units between groups; moving its
start (to the future, or clearing it) would make it "not started" and unlock them."""

NAME_RULE = "8 to 63 of A-Z a-z 0-9 - _ . starting with a letter or digit"
GROUP_RULE = "1 to 63 of A-Z a-z 0-9 - _ . starting with a letter or digit"
ENTITY_RULE = ("1 to 63 letters or digits of any script, - _ or ., starting with a letter or "
               "digit")
ENTITY_NAME = re.compile(r"(?=[^\W_])[\w.-]{1,63}")
"""Layer and holdout names: any script (they are hashed as UTF-8, as ``sl-v2`` rows name
them), no spaces or other punctuation (they appear in URLs and on the command line)."""


def _check_name(row: Mapping[str, Any]) -> str:
    name = row.get("name")
    if not isinstance(name, str) or not EXPERIMENT_NAME.fullmatch(name):
        raise ConfigError("name", f"invalid name {name!r}: {NAME_RULE}")
    return name


def with_served_defaults(kind: str, row: Mapping[str, Any], start: datetime) -> dict[str, Any]:
    """``row`` with a missing or null ``start`` (``start``: the moment of saving, so "no start"
    keeps meaning "live from creation"), ``end`` (:data:`OPEN_END`), ``stream_name``
    (``product_metrics.web_base``), ``schema_id`` (Test Kitchen's base schema) and, for an
    instrument, ``sample_unit`` (``session``) filled in."""
    defaults: dict[str, Any] = {
        "start": format_time(start.replace(microsecond=0)), "end": OPEN_END,
        "stream_name": DEFAULT_STREAM, "schema_id": DEFAULT_SCHEMA}
    if kind == "instrument":
        defaults["sample_unit"] = SAMPLE_UNITS[0]
    filled = dict(row)
    for field, value in defaults.items():
        if filled.get(field) in (None, ""):
            filled[field] = value
    return filled


def _check_served(row: Mapping[str, Any]) -> None:
    """Refuse values Test Kitchen cannot use: it sends every event to ``stream_name`` with
    ``schema_id`` as its ``$schema``."""
    for field in ("stream_name", "schema_id"):
        value = optional_str(row.get(field), field)
        if value is None or not value.strip() or value != value.strip():
            raise ConfigError(field, f"must be a non-empty name without surrounding spaces, "
                                     f"got {value!r}: Test Kitchen sends every event with it")


def _unmanaged(row: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise ConfigError("", f"a row must be a JSON object, got {type(row).__name__}")
    return {k: v for k, v in row.items() if k not in MANAGED_FIELDS}


def normalize_experiment(row: Mapping[str, Any], version: int, now: datetime) -> dict[str, Any]:
    """The stored form of an experiment row saved at ``now`` (with ``version`` and
    ``exposure_version``). Raises :class:`ConfigError` naming the field that is wrong.
    """
    clean = with_served_defaults("experiment", _unmanaged(row), now)
    if clean.get("algorithm") == SL_V2:
        # Old readers' sample_rate is each site's total of the split (DESIGN.md, sl-v2): always
        # derived, so that a patch of the split (which keeps the stored fields it omits) or a
        # tk-v1 row becoming sl-v2 never serves a stale rate.
        clean.pop("sample_rate", None)
    _check_served(clean)
    experiment = Experiment.from_config(clean, strict=True)
    _check_name(clean)
    for group in experiment.groups:
        if not GROUP_NAME.fullmatch(group):
            raise ConfigError("groups", f"invalid group name {group!r}: {GROUP_RULE}")
    stored = experiment.to_config()
    stored["version"] = version
    return stored


def normalize_instrument(row: Mapping[str, Any], version: int, now: datetime) -> dict[str, Any]:
    """The stored form of an instrument row saved at ``now``: an event source sampled by
    ``sample_rate`` per ``sample_unit``, with no groups. Raises :class:`ConfigError` naming the
    field that is wrong."""
    clean = with_served_defaults("instrument", _unmanaged(row), now)
    unknown = sorted(set(clean) - INSTRUMENT_FIELDS)
    if unknown:
        raise ConfigError(unknown[0], "is not a known instrument field")
    name = _check_name(clean)
    if "sample_rate" not in clean:
        raise ConfigError("sample_rate", "is required")
    if clean["sample_unit"] not in SAMPLE_UNITS:
        raise ConfigError("sample_unit", f"must be one of {', '.join(SAMPLE_UNITS)} (the units "
                                         f"Test Kitchen samples by), got {clean['sample_unit']!r}")
    _check_served(clean)
    start, end = parse_window(clean)
    stored: dict[str, Any] = {
        "name": name,
        "sample_rate": SampleRate.parse(clean["sample_rate"]).to_wire(),
        "sample_unit": clean["sample_unit"],
        "start": format_time(start),
        "end": format_time(end),
    }
    for field in ("stream_name", "schema_id"):
        stored[field] = clean[field]
    stored["contextual_attributes"] = list(
        string_list(clean.get("contextual_attributes"), "contextual_attributes"))
    stored["version"] = version
    return stored


def normalize_entity(kind: str, row: Mapping[str, Any], version: int) -> dict[str, Any]:
    """The stored form of a layer (``{name, description?, end?}``; always :data:`BINS` bins) or a
    holdout (``{name, percent, description?, end?}``, ``0 < percent <= 100`` with at most 3
    decimals). ``end`` is set when it is ended. Raises :class:`ConfigError` naming the field."""
    clean = _unmanaged(row)
    unknown = sorted(set(clean) - ENTITY_FIELDS[kind])
    if kind == "layer" and unknown and unknown[0] in ("bins", "range"):
        raise ConfigError(unknown[0], f"a layer always has {BINS} bins; experiments take "
                                      "ranges of it (layer: {name, bins} or {name, range})")
    if unknown:
        raise ConfigError(unknown[0], f"is not a known {kind} field")
    name = clean.get("name")
    if not isinstance(name, str) or not ENTITY_NAME.fullmatch(name):
        raise ConfigError("name", f"invalid name {name!r}: {ENTITY_RULE}")
    stored: dict[str, Any] = {"name": name}
    description = optional_str(clean.get("description"), "description")
    if description:
        stored["description"] = description
    if kind == "holdout":
        if clean.get("percent") is None:
            raise ConfigError("percent", "is required: the share of all units held out")
        weight = thousandths(clean["percent"], "percent")
        if weight == 0:
            raise ConfigError("percent", "must be more than 0 (at most 100, 3 decimals)")
        stored["percent"] = percent_of(weight)
    end = parse_time(clean.get("end"), "end")
    if end is not None:
        stored["end"] = format_time(end)
    stored["version"] = version
    return stored


def normalize(kind: str, row: Mapping[str, Any], version: int, now: datetime) -> dict[str, Any]:
    """Validate and normalize a row of ``kind`` (``experiment``, ``instrument``, ``layer`` or
    ``holdout``) saved at ``now`` (the ``start`` of a row that gives none)."""
    if kind == "experiment":
        return normalize_experiment(row, version, now)
    if kind in ENTITY_KINDS:
        return normalize_entity(kind, row, version)
    return normalize_instrument(row, version, now)


def migrate_stored(kind: str, row: Mapping[str, Any], created: datetime) -> dict[str, Any]:
    """A row stored before the served defaults existed, as it is stored now: the defaults filled
    in (a missing ``start`` being ``created``, when its "live from creation" began) and, for an
    experiment, its ``exposure_version`` recomputed as Test Kitchen computes it."""
    migrated = with_served_defaults(kind, row, created)
    if kind == "experiment":
        migrated["exposure_version"] = exposure_version(migrated)
    return migrated


def has_started(row: Mapping[str, Any], now: datetime) -> bool:
    """Whether the row's ``start`` is not in the future (no ``start``: live from creation, as
    the SDK's ``Experiment.is_active`` sees it)."""
    start = parse_time(row.get("start"), "start")
    return start is None or start <= now


def merge_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with the fields of ``patch`` replaced (a ``null`` value clears a field)."""
    if not isinstance(patch, Mapping):
        raise ConfigError("", f"a patch must be a JSON object, got {type(patch).__name__}")
    if not patch:
        raise ConfigError("", "the patch is empty: name at least one field to change")
    merged = {k: v for k, v in current.items() if k not in MANAGED_FIELDS}
    merged.update(_unmanaged(patch))
    return merged


def check_change(kind: str, old: Mapping[str, Any], new: Mapping[str, Any], now: datetime) -> None:
    """Refuse (:class:`ConflictError`) edits that would reshuffle units of a started experiment.

    Once started, the name never changes; ``groups``, ``user_identifier_type`` and ``start``
    change only together with ``phase_index`` moving to the next phase. Within a phase, group
    ratios and layer ranges follow :mod:`splitlab.registry.traffic_guard`.
    """
    if kind in ENTITY_KINDS:
        if new["name"] != old["name"]:
            raise ConflictError(f"{kind} {old['name']!r} cannot be renamed: experiment rows name "
                                f"it. Create a new {kind} instead")
        return
    if not has_started(old, now):
        return
    name = old["name"]
    if new["name"] != name:
        raise ConflictError(
            f"{kind} {name!r} has started; its name cannot change. Create a new {kind} instead"
        )
    if kind != "experiment":
        return
    changed = [f for f in LOCKED_AFTER_START if old.get(f) != new.get(f)]
    next_phase = int(old.get("phase_index", 0)) + 1
    if new.get("phase_index") not in (old.get("phase_index"), next_phase):
        raise ConflictError(
            f"experiment {name!r} has started; phase_index can only move to the next phase "
            f"({next_phase})")
    if changed and new.get("phase_index") != next_phase:
        raise ConflictError(
            f"experiment {name!r} has started; {' and '.join(changed)} cannot change within a "
            f"phase (units would move between groups). Start a new phase instead: send the "
            f"change with phase_index {next_phase} (and a new start)"
        )
    if new.get("phase_index") != next_phase:
        before, after = Experiment.from_config(old), Experiment.from_config(new)
        traffic_guard.check_traffic(before, after)
        traffic_guard.check_layer_change(before, after)
        traffic_guard.check_holdout_change(before, after)


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Field → ``[old, new]`` for every field whose value differs (managed fields excluded)."""
    keys = sorted((set(old) | set(new)) - MANAGED_FIELDS)
    return {k: [old.get(k), new.get(k)] for k in keys if old.get(k) != new.get(k)}
