"""The attributes targeting conditions see, as the server SDK builds them from a request.

A condition (:mod:`splitlab.core.targeting`) is evaluated on a flat mapping. The standard
attributes have fixed names, so that one experiment's condition reads the same in the server
SDK, OFREP (whose evaluation context carries them) and the browser SDK: ``site`` (the wiki
database name), ``skin``, ``platform`` (``desktop``, ``mobile``, ``app``), ``is_logged_in``,
``edit_count`` and ``registration_date`` (ISO 8601 in UTC, which compares as text in time
order). Whatever the application adds goes beside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from splitlab.core.model import format_time

STANDARD = ("site", "skin", "platform", "is_logged_in", "edit_count", "registration_date")
"""The names of the standard attributes."""


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """The standard attributes of one request (``None``: unknown, left out) and ``extra``
    ones from the application (which may not replace a standard one that is set)."""

    site: str | None = None
    skin: str | None = None
    platform: str | None = None
    is_logged_in: bool | None = None
    edit_count: int | None = None
    registration_date: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The flat mapping a condition is evaluated on."""
        found: dict[str, Any] = dict(self.extra)
        for name in STANDARD:
            value = getattr(self, name)
            if isinstance(value, datetime):
                if value.tzinfo is None:
                    raise TypeError("registration_date must be an aware datetime (UTC)")
                value = format_time(value)
            if value is not None:
                found[name] = value
        return found


def attribute_map(attributes: RequestAttributes | Mapping[str, Any] | None) -> dict[str, Any]:
    """A flat attribute mapping from :class:`RequestAttributes`, a mapping or ``None``."""
    if attributes is None:
        return {}
    if isinstance(attributes, RequestAttributes):
        return attributes.as_dict()
    if not isinstance(attributes, Mapping):
        raise TypeError(f"attributes must be a mapping, not {type(attributes).__name__}")
    return dict(attributes)
