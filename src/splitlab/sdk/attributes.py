"""The attributes targeting conditions see, as the server SDK builds them from a request.

A condition (:mod:`splitlab.core.targeting`) is evaluated on a flat mapping. The standard
attributes have fixed names, so that one experiment's condition reads the same in the server
SDK, OFREP (whose evaluation context carries them) and the browser SDK: ``site`` (the wiki
database name), ``skin``, ``platform`` (``desktop``, ``mobile``, ``app``), ``is_logged_in``,
``edit_count`` and ``registration_date`` (ISO 8601 in UTC, which compares as text in time
order). Whatever the application adds goes beside them.

The web middlewares fill what a request tells (:func:`platform_of`, :func:`skin_of`, and
``is_logged_in``/``registration_date`` where the framework knows the user); ``site`` is the
client's (the same site the traffic split is chosen by); ``edit_count`` and anything else come
from the application (``WebOptions.attributes`` or ``manager.update_attributes``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from splitlab.core.model import format_time

STANDARD = ("site", "skin", "platform", "is_logged_in", "edit_count", "registration_date")
"""The names of the standard attributes."""
_APP_AGENT = re.compile(r"\bWikipediaApp/")
"""The Wikipedia apps' user agents (``WikipediaApp/7.4.0 (iOS 17.0; Phone)``)."""


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


def platform_of(user_agent: str | None, mobile_hint: str | None, host: str | None) -> str | None:
    """``app`` for the Wikipedia apps' user agents; ``mobile`` on a MediaWiki mobile domain
    (``en.m.wikipedia.org``: the mobile site is what is served, whatever the device), else as
    the ``Sec-CH-UA-Mobile`` client hint says (``?1``/``?0``), else ``mobile`` when the user
    agent says ``Mobi`` (the token mobile browsers send); otherwise ``desktop``. ``None`` when
    the request carries none of these."""
    if user_agent and _APP_AGENT.search(user_agent):
        return "app"
    if ".m." in "." + (host or "").split(":", 1)[0].lower():
        return "mobile"
    hint = (mobile_hint or "").strip()
    if hint in ("?0", "?1"):
        return "mobile" if hint == "?1" else "desktop"
    if not user_agent:
        return None
    return "mobile" if "Mobi" in user_agent else "desktop"


def skin_of(query_string: str) -> str | None:
    """The skin a MediaWiki-style ``useskin`` query parameter asks for (``None`` without one)."""
    if "useskin=" not in query_string:
        return None
    for key, value in parse_qsl(query_string, keep_blank_values=False):
        if key == "useskin":
            return value
    return None
