"""Validation and the rules that protect running experiments.

Rows created in the registry follow stricter rules than configs found in the wild: unknown fields
are refused, and experiment, instrument and group names follow the enrollment header's grammar
(DESIGN.md, Wire contracts) so every registry experiment can travel in that header.
``version`` and ``exposure_version`` are managed by the registry: given ones are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from splitlab.core.headers import EXPERIMENT_NAME, GROUP_NAME
from splitlab.core.model import (
    Experiment,
    SampleRate,
    format_time,
    optional_str,
    parse_time,
    parse_window,
    string_list,
)
from splitlab.errors import ConfigError, ConflictError

MANAGED_FIELDS = frozenset({"version", "exposure_version"})
"""Fields the registry sets itself; values sent by clients are ignored."""

INSTRUMENT_FIELDS = frozenset(
    {"name", "sample_rate", "start", "end", "stream_name", "schema_id", "contextual_attributes"}
)
LOCKED_AFTER_START = ("user_identifier_type", "groups", "start")
"""Changing the first two on a started experiment would move units between groups; moving its
start (to the future, or clearing it) would make it "not started" and unlock them."""

NAME_RULE = "8 to 63 of A-Z a-z 0-9 - _ . starting with a letter or digit"
GROUP_RULE = "1 to 63 of A-Z a-z 0-9 - _ . starting with a letter or digit"


def _check_name(row: Mapping[str, Any]) -> str:
    name = row.get("name")
    if not isinstance(name, str) or not EXPERIMENT_NAME.fullmatch(name):
        raise ConfigError("name", f"invalid name {name!r}: {NAME_RULE}")
    return name


def _unmanaged(row: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise ConfigError("", f"a row must be a JSON object, got {type(row).__name__}")
    return {k: v for k, v in row.items() if k not in MANAGED_FIELDS}


def normalize_experiment(row: Mapping[str, Any], version: int) -> dict[str, Any]:
    """The stored form of an experiment row (with ``version`` and ``exposure_version``).

    Raises :class:`ConfigError` naming the field that is wrong.
    """
    clean = _unmanaged(row)
    experiment = Experiment.from_config(clean, strict=True)
    _check_name(clean)
    for group in experiment.groups:
        if not GROUP_NAME.fullmatch(group):
            raise ConfigError("groups", f"invalid group name {group!r}: {GROUP_RULE}")
    stored = experiment.to_config()
    stored["version"] = version
    return stored


def normalize_instrument(row: Mapping[str, Any], version: int) -> dict[str, Any]:
    """The stored form of an instrument row: an event source sampled by ``sample_rate``, with no
    groups. Raises :class:`ConfigError` naming the field that is wrong."""
    clean = _unmanaged(row)
    unknown = sorted(set(clean) - INSTRUMENT_FIELDS)
    if unknown:
        raise ConfigError(unknown[0], "is not a known instrument field")
    name = _check_name(clean)
    if "sample_rate" not in clean:
        raise ConfigError("sample_rate", "is required")
    start, end = parse_window(clean)
    stored: dict[str, Any] = {
        "name": name,
        "sample_rate": SampleRate.parse(clean["sample_rate"]).to_wire(),
        "start": format_time(start),
        "end": format_time(end),
    }
    for field in ("stream_name", "schema_id"):
        stored[field] = optional_str(clean.get(field), field)
    stored["contextual_attributes"] = list(
        string_list(clean.get("contextual_attributes"), "contextual_attributes"))
    stored["version"] = version
    return stored


def normalize(kind: str, row: Mapping[str, Any], version: int) -> dict[str, Any]:
    """Validate and normalize a row of ``kind`` (``experiment`` or ``instrument``)."""
    if kind == "experiment":
        return normalize_experiment(row, version)
    return normalize_instrument(row, version)


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
    change only together with ``phase_index`` moving to the next phase.
    """
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


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Field → ``[old, new]`` for every field whose value differs (managed fields excluded)."""
    keys = sorted((set(old) | set(new)) - MANAGED_FIELDS)
    return {k: [old.get(k), new.get(k)] for k in keys if old.get(k) != new.get(k)}
