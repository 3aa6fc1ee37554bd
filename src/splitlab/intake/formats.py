"""String formats as EventGate checks them, where its clients depend on it.

EventGate validates with AJV 6 in its default "fast" format mode, which accepts forms that
RFC 3339 and RFC 3986 do not, and which clients really send:

- ``date-time``: a space instead of ``T`` (Python's ``str(datetime)``, SQL), and offsets without
  a colon or without minutes (``+0200``, ``+02``: PHP's ``DATE_ISO8601``, Java's
  ``SimpleDateFormat``). splitlab accepts them and stores them rewritten as RFC 3339 in UTC
  (``2025-05-01T10:00:00Z``; the fraction of a second kept as sent), so that every stored
  ``date-time`` is RFC 3339. Unlike AJV's fast mode it keeps refusing dates and times that do
  not exist (``2025-02-30``, ``25:00``, an offset of 24 hours or more, a leap second anywhere
  but 23:59:60 UTC). Values RFC 3339 accepts are stored as sent.
- ``uri`` and ``uri-reference``: AJV's fast patterns, which allow characters a browser leaves in
  ``location.href`` (``|``, ``[``, ``]``, ``{``, ``^``, ...) and refuse only whitespace (and a
  backslash at the start of a path or fragment, for ``uri-reference``).

Other formats are checked strictly by jsonschema-rs. The schemas validate with jsonschema-rs's
own (strict, compiled) checks first; these functions look only at the values those refuse, so
the common event costs no Python call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

# What JavaScript's \s matches (AJV's patterns use it); Python's \s is not the same set.
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_DATE_TIME = re.compile(
    "([0-9]{4})-([0-9]{2})-([0-9]{2})[tT" + _JS_SPACE + "]"
    "([0-9]{2}):([0-9]{2}):([0-9]{2})(\\.[0-9]+)?"
    "(?:[zZ]|([+-])([0-9]{2})(?::?([0-9]{2}))?)")
_URI = re.compile("[a-zA-Z][a-zA-Z0-9+\\-.]*:(?://?)?[^" + _JS_SPACE + "]*")
_URI_REFERENCE = re.compile(
    "(?:(?:[a-zA-Z][a-zA-Z0-9+\\-.]*:)?//?)?"
    "(?:[^\\\\#" + _JS_SPACE + "][^#" + _JS_SPACE + "]*)?"
    "(?:#[^\\\\" + _JS_SPACE + "]*)?")


def is_uri(value: str) -> bool:
    """AJV 6's fast ``uri``: a scheme, then anything without whitespace."""
    return _URI.fullmatch(value) is not None


def is_uri_reference(value: str) -> bool:
    """AJV 6's fast ``uri-reference``."""
    return _URI_REFERENCE.fullmatch(value) is not None


_LENIENT: Mapping[str, Callable[[str], bool]] = {"uri": is_uri, "uri-reference": is_uri_reference}


def as_eventgate_accepts(format_name: str, value: str) -> str | None:
    """The value to store for a string the strict ``format_name`` check refused: ``value``
    itself or its normalised form when EventGate accepts it, else None."""
    if format_name == "date-time":
        return normalize_date_time(value)
    check = _LENIENT.get(format_name)
    return value if check is not None and check(value) else None


def normalize_date_time(value: str) -> str | None:
    """``value`` as RFC 3339 in UTC, when AJV's fast ``date-time`` accepts it and the moment
    exists; otherwise None."""
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, sign, offset_hours, offset_minutes = match.groups()[6:]
    offset = timedelta(hours=int(offset_hours or 0), minutes=int(offset_minutes or 0))
    if offset_hours is not None and (int(offset_hours) > 23 or int(offset_minutes or 0) > 59):
        return None
    leap = second == 60
    if leap and not (hour == 23 and minute == 59 and not offset):
        return None
    try:
        local = datetime(year, month, day, hour, minute, 59 if leap else second)
        utc = local - offset if sign == "+" else local + offset
    except (ValueError, OverflowError):
        return None
    seconds = "60" if leap else f"{utc.second:02d}"
    return (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
            f"{seconds}{fraction or ''}Z")


def replace_at(value: Any, path: Sequence[str | int], new: Any) -> Any:
    """A copy of ``value`` with ``new`` at ``path``; containers off the path are shared."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = replace_at(value[head], rest, new)
    return copy
