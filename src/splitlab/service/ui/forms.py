"""The experiment form: a Test Kitchen row to form values and back, and errors to fields.

Validation is the registry's own (:mod:`splitlab.registry.rules`, run when the row is saved):
this module only turns text fields into the row's JSON shapes, and the registry's
:class:`~splitlab.errors.ConfigError` field names into the form field they belong to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from splitlab.core.model import IDENTIFIER_TYPES
from splitlab.errors import ConfigError

FIELDS = ("name", "groups", "sample_rate", "site_rates", "identifier_type", "start", "end",
          "stream_name", "schema_id", "contextual_attributes")
"""The form's fields, in page order."""

_ROW_FIELD = {"user_identifier_type": "identifier_type", "sample_rate": "sample_rate"}


@dataclass(frozen=True, slots=True)
class FormState:
    """What the form shows: its values (text), errors by field, and a form-level error."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    problem: str = ""
    metrics: tuple[str, ...] = ()


def _time_text(value: object) -> str:
    """A stored ``2026-01-02T03:04:05Z`` as a ``datetime-local`` value (UTC, minutes)."""
    return str(value)[:16] if isinstance(value, str) else ""


def values_of(row: Mapping[str, Any]) -> dict[str, str]:
    """The form's text values for a stored row."""
    rate = row.get("sample_rate") or {"default": 1}
    sites = [f"{site}={key}" for key, names in rate.items() if key != "default"
             for site in names]
    return {
        "name": str(row.get("name", "")), "groups": ", ".join(row.get("groups", [])),
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
    cannot even be read. Everything else is checked when the registry saves the row."""
    return {
        "name": values.get("name", "").strip(), "groups": _split(values.get("groups", "")),
        "sample_rate": _rate(values),
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
    if where:
        return FormState(dict(values), {where: error.reason}, metrics=metrics)
    return FormState(dict(values), problem=str(error), metrics=metrics)
