"""The experiment form: a Test Kitchen row to form values and back, and errors to fields.

Validation is the registry's own (:mod:`splitlab.registry.rules`, run when the row is saved):
this module only turns text fields into the row's JSON shapes, and the registry's
:class:`~splitlab.errors.ConfigError` field names into the form field they belong to. The
algorithm field chooses ``tk-v1`` (sample rate and per-site rates) or ``sl-v2`` (the traffic
split table, layer, holdouts and targeting of :mod:`splitlab.service.ui.split_form`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from splitlab.core.model import IDENTIFIER_TYPES
from splitlab.errors import ConfigError, ConflictError
from splitlab.service.ui import split_form

ALGORITHMS = ("tk-v1", "sl-v2")
FIELDS = ("name", "groups", "algorithm", "sample_rate", "site_rates", *split_form.FIELDS,
          "identifier_type", "start", "end", "stream_name", "schema_id",
          "contextual_attributes")
"""The form's fields, in page order."""

_ROW_FIELD = {"user_identifier_type": "identifier_type", "sample_rate": "sample_rate"}


@dataclass(frozen=True, slots=True)
class FormState:
    """What the form shows: its values (text), errors by field, and a form-level error."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    problem: str = ""
    metrics: tuple[str, ...] = ()
    invalid_sites: frozenset[str] = frozenset()
    """The split table's rows (by site) an error is about."""
    focus: str = ""
    """The id of the control to focus (after a table button re-rendered the form)."""

    @property
    def groups(self) -> list[str]:
        """The groups typed in the form (the split table's columns)."""
        return _split(self.values.get("groups", ""))

    @property
    def split_rows(self) -> list[split_form.TableRow]:
        """The split table's rows with their sums."""
        return split_form.table(self.values, self.groups, set(self.invalid_sites))


def _time_text(value: object) -> str:
    """A stored ``2026-01-02T03:04:05Z`` as a ``datetime-local`` value (UTC, seconds: a start
    saved as the moment of creation has them, and must not move when the form is saved)."""
    return str(value)[:19] if isinstance(value, str) else ""


def values_of(row: Mapping[str, Any]) -> dict[str, str]:
    """The form's text values for a stored row."""
    rate = row.get("sample_rate") or {"default": 1}
    sites = [f"{site}={key}" for key, names in rate.items() if key != "default"
             for site in names]
    groups = list(row.get("groups", []))
    return {
        "name": str(row.get("name", "")), "groups": ", ".join(groups),
        "algorithm": str(row.get("algorithm", ALGORITHMS[0])),
        **split_form.values_of(row, groups),
        "sample_rate": str(rate.get("default", "")), "site_rates": ", ".join(sites),
        "identifier_type": str(row.get("user_identifier_type", IDENTIFIER_TYPES[0])),
        "start": _time_text(row.get("start")), "end": _time_text(row.get("end")),
        "stream_name": str(row.get("stream_name") or ""),
        "schema_id": str(row.get("schema_id") or ""),
        "contextual_attributes": ", ".join(row.get("contextual_attributes") or []),
    }


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(where, f"{text!r} is not a number from 0 to 1") from None


def _rate(values: Mapping[str, str]) -> dict[str, Any]:
    rate: dict[str, Any] = {"default": _number(values["sample_rate"].strip() or "x",
                                               "sample_rate")}
    for entry in _split(values.get("site_rates", "")):
        site, equals, value = entry.partition("=")
        if not equals or not site.strip():
            raise ConfigError("site_rates", f"{entry!r} is not site=rate (for example "
                                            "enwiki=0.5)")
        key = repr(_number(value.strip(), "site_rates"))
        rate.setdefault(key, []).append(site.strip())
    return rate


def _time(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    return text if text.endswith("Z") else f"{text}:00Z" if len(text) == 16 else f"{text}Z"


def row_of(values: Mapping[str, str]) -> dict[str, Any]:
    """The row the form describes; :class:`ConfigError` (with a form field) when a text field
    cannot even be read. Everything else is checked when the registry saves the row. An
    ``sl-v2`` row has no ``sample_rate``: the registry derives it from the split."""
    groups = _split(values.get("groups", ""))
    algorithm = values.get("algorithm", ALGORITHMS[0])
    if algorithm not in ALGORITHMS:
        raise ConfigError("algorithm", f"must be one of {', '.join(ALGORITHMS)}")
    traffic = (split_form.row_fields(values, groups) if algorithm == "sl-v2"
               else {"sample_rate": _rate(values)})
    return {
        "name": values.get("name", "").strip(), "groups": groups, **traffic,
        "user_identifier_type": values.get("identifier_type", ""),
        "start": _time(values.get("start", "")), "end": _time(values.get("end", "")),
        "stream_name": values.get("stream_name", "").strip() or None,
        "schema_id": values.get("schema_id", "").strip() or None,
        "contextual_attributes": _split(values.get("contextual_attributes", "")),
    }


def form_field(error: ConfigError) -> str:
    """The form field a registry error names (``""``: the whole form)."""
    name = error.field.split("[")[0].split(".")[0]
    name = _ROW_FIELD.get(name, name)
    return name if name in FIELDS else ""


def failed(values: Mapping[str, str], error: ConfigError, metrics: tuple[str, ...] = ()
           ) -> FormState:
    """The form again, with ``error`` next to its field."""
    where = form_field(error)
    if where in split_form.FIELDS:
        return FormState(dict(values), {where: split_form.describe(error.field, error.reason,
                                                                   values)},
                         metrics=metrics,
                         invalid_sites=frozenset(split_form.error_sites(error.field)))
    if where:
        return FormState(dict(values), {where: error.reason}, metrics=metrics)
    return FormState(dict(values), problem=str(error), metrics=metrics)


def refused_traffic(values: Mapping[str, str], error: ConflictError,
                    metrics: tuple[str, ...] = ()) -> FormState | None:
    """The form again with a refusal of the traffic guard (409: the change would move units of
    a started experiment) next to the split or the layer; ``None`` for other refusals."""
    where, sites = split_form.conflict_field(str(error))
    if not where:
        return None
    label = "Traffic split" if where == "traffic_split" else "Layer"
    return FormState(dict(values), {where: f"Not saved: {error}"}, metrics=metrics,
                     problem=f"Not saved: the change would move units between groups of a "
                             f"running experiment (see {label} below).",
                     invalid_sites=frozenset(sites))


def table_edit(values: Mapping[str, str], op: str, metrics: tuple[str, ...] = ()
               ) -> FormState:
    """The form after a split-table button (``op``): nothing is saved."""
    edited, focus = split_form.edited(values, _split(values.get("groups", "")), op)
    return FormState(edited, metrics=metrics, focus=focus)


def is_table_edit(op: str) -> bool:
    """Whether ``op`` (the pressed submit button's value) is a split-table button."""
    return op in ("add-site", "refresh") or op.startswith("remove-")


def patch_of(current: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """The update that makes the stored ``current`` what the form describes (``row``): the
    algorithm's fields the form no longer sets are cleared (a patch keeps fields it omits)."""
    patch = dict(row)
    for key in split_form.ROW_FIELDS:
        if key in current and key not in patch:
            patch[key] = ALGORITHMS[0] if key == "algorithm" else None
    return patch
