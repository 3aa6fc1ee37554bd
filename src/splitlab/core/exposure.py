"""The config digest ``exposure_version``, exactly as Test Kitchen's MediaWiki extension
computes it (DESIGN.md, config digest), so events from MediaWiki and from splitlab's SDKs carry
the same version for the same config.

Test Kitchen ignores a served ``exposure_version`` and computes its own from the row it fetched:
the first 16 hex digits of sha256 over PHP's ``json_encode`` (slashes and Unicode unescaped) of,
in this key order, ``name``, ``user_identifier_type``, ``groups`` in PHP ``sort()`` order,
``sample_rate`` as served (its keys in served order), ``stream_name``, ``schema_id`` (a missing
or null one being :data:`DEFAULT_SCHEMA`) and ``contextual_attributes`` (missing or null: ``[]``).
A missing ``groups`` or ``sample_rate`` counts as ``[]``. The checked vectors are
``tests/vectors/exposure-version.json``, produced by running Test Kitchen's PHP.

The PHP 8 behaviours the digest depends on are reproduced here for the values JSON can carry,
as Python's ``json`` module reads them:

- :func:`php_json`: ``json_encode``'s bytes. A JSON integer that fits a 64-bit signed integer
  prints as one; a larger one, like every float, is a PHP double: shortest round-trip digits,
  exponent form below ``1e-4`` and from ``1e17`` (``1.0e-5``, ``1.0e+20``), and no ``.0`` on an
  integral value (``1.0`` prints ``1``). An object whose keys are ``"0"``, ``"1"``, ... in that
  order was a PHP list and prints as a JSON array; an empty object prints ``[]``.
- :func:`php_compare`: ``<=>`` on two strings: numerically when both are numeric strings
  (``"9" < "10"``, ``"1e1" == "10"``), else byte by byte.
- :func:`php_sort`: ``sort()`` on a list of strings: PHP's own hybrid insertion sort and
  quicksort (the exact sequence of comparisons matters, since the comparison above is not
  transitive: ``"10" < "1a" < "9" < "10"``), stable on ties.

Values JSON cannot carry (NaN, infinities, mappings with non-string keys, strings that are not
valid Unicode) raise :class:`~splitlab.errors.ConfigError`: PHP would not have read such a row.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from splitlab.errors import ConfigError

DEFAULT_SCHEMA = "/analytics/product_metrics/web/base/2.1.0"
"""Test Kitchen's base schema id: the ``schema_id`` it assumes when a row has none."""

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
            "\t": "\\t", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\u2028\u2029]')
_WHITESPACE = " \t\n\r\v\f"
_NUMERIC = re.compile(r"[+-]?(?:([0-9]+)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_LONG_DIGITS = 20
"""PHP's ``MAX_LENGTH_OF_LONG``: from this many significant digits an integer string overflows."""


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"


def php_string(text: str) -> str:
    """``json_encode`` of a string: quotes, the short escapes, ``\\u00XX`` for other control
    characters and ``\\u2028``/``\\u2029``; slashes and other Unicode as they are."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("", f"{text!r} is not valid Unicode text") from None
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-trip digits of a positive finite double and the position of the
    decimal point: ``value == 0.<digits> * 10**point``."""
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    everything = whole + fraction
    significant = everything.lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(everything) - len(significant))
    return significant.rstrip("0"), point


def php_double(value: float) -> str:
    """A double as ``json_encode`` writes it with ``serialize_precision = -1``."""
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError("", f"{value!r} is not a JSON number")
    sign = "-" if str(value).startswith("-") else ""
    if value == 0:
        return sign + "0"
    digits, point = _shortest_digits(abs(value))
    if point < -3 or point > 17:
        exponent = point - 1
        return (f"{sign}{digits[0]}.{digits[1:] or '0'}e{'-' if exponent < 0 else '+'}"
                f"{abs(exponent)}")
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    whole, fraction = digits[:point].ljust(point, "0"), digits[point:]
    return sign + whole + (f".{fraction}" if fraction else "")


def php_number(value: int | float) -> str:
    """A JSON number as PHP reads it (an integer beyond 64 bits becomes a double) and writes it."""
    if isinstance(value, int) and _LONG_MIN <= value <= _LONG_MAX:
        return str(value)
    try:
        return php_double(float(value))
    except OverflowError:
        raise ConfigError("", f"{value!r} is beyond a double") from None


def _is_list_keys(keys: Sequence[str]) -> bool:
    return all(key == str(index) for index, key in enumerate(keys))


def php_json(value: object) -> str:
    """``json_encode($value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE)`` of the PHP value
    that ``json_decode($json, true)`` makes of ``value`` (a value Python's ``json`` read)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return php_number(value)
    if isinstance(value, str):
        return php_string(value)
    if isinstance(value, Mapping):
        keys = list(value)
        if not all(isinstance(key, str) for key in keys):
            raise ConfigError("", f"object keys must be strings, got {keys!r}")
        if _is_list_keys(keys):
            return "[" + ",".join(php_json(value[key]) for key in keys) + "]"
        return "{" + ",".join(f"{php_string(key)}:{php_json(value[key])}" for key in keys) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(php_json(item) for item in value) + "]"
    raise ConfigError("", f"{type(value).__name__} is not a JSON value")


def _numeric(text: str) -> tuple[int | float, int] | None:
    """PHP 8's reading of a numeric string: ``(value, overflow)``, where ``value`` is an ``int``
    (a 64-bit integer string) or a ``float``, and ``overflow`` is +1/-1 for an integer string
    beyond 64 bits (read as a double); ``None`` when the string is not numeric. Leading and
    trailing whitespace are allowed; hexadecimal, ``inf`` and underscores are not."""
    body = text.strip(_WHITESPACE)
    found = _NUMERIC.fullmatch(body)
    if found is None:
        return None
    integer, fraction, exponent = found.groups()
    if integer is not None and fraction is None and exponent is None:
        if len(integer.lstrip("0")) < _LONG_DIGITS:
            number = int(body)
            if _LONG_MIN <= number <= _LONG_MAX:
                return number, 0
        return float(body), -1 if body.startswith("-") else 1
    return float(body), 0


def _sign(number: float) -> int:
    return (number > 0) - (number < 0)


class _Operand(NamedTuple):
    """A string as ``<=>`` sees it: its UTF-8 bytes and its numeric reading (if any)."""

    raw: bytes
    number: tuple[int | float, int] | None


def _operand(text: str) -> _Operand:
    return _Operand(text.encode("utf-8"), _numeric(text))


def _compare(left: _Operand, right: _Operand) -> int:
    if left.number is not None and right.number is not None:
        (a, a_over), (b, b_over) = left.number, right.number
        same_overflow = a_over != 0 and a_over == b_over and float(a) - float(b) == 0
        if not same_overflow:
            if isinstance(a, int) and isinstance(b, int):
                return _sign(a - b)
            if isinstance(a, int) and b_over:
                return -b_over
            if isinstance(b, int) and a_over:
                return a_over
            if not (a == b and a in (float("inf"), float("-inf"))):
                return _sign(float(a) - float(b))
    return (left.raw > right.raw) - (left.raw < right.raw)


def php_compare(left: str, right: str) -> int:
    """PHP 8's ``$left <=> $right`` for two strings: -1, 0 or 1."""
    return _compare(_operand(left), _operand(right))


class _ZendSort:
    """One run of PHP's ``zend_sort`` over ``items``: ``after(a, b)`` says whether item ``a``
    sorts after item ``b``. The same comparisons in the same order as PHP, so a comparison that
    is not transitive still gives PHP's order."""

    def __init__(self, items: list[int], after: Callable[[int, int], bool]) -> None:
        self.items = items
        self.after = after

    def gt(self, i: int, j: int) -> bool:
        return self.after(self.items[i], self.items[j])

    def swap(self, i: int, j: int) -> None:
        self.items[i], self.items[j] = self.items[j], self.items[i]

    def network(self, at: Sequence[int]) -> None:
        """PHP's fixed sorts of 2 to 5 positions: three by cases, then each further one sunk."""
        if len(at) == 2:
            if self.gt(at[0], at[1]):
                self.swap(at[0], at[1])
            return
        a, b, c = at[:3]
        if not self.gt(a, b):
            if self.gt(b, c):
                self.swap(b, c)
                if self.gt(a, b):
                    self.swap(a, b)
        elif not self.gt(c, b):
            self.swap(a, c)
        else:
            self.swap(a, b)
            if self.gt(b, c):
                self.swap(b, c)
        for last in range(3, len(at)):
            for k in range(last, 0, -1):
                if not self.gt(at[k - 1], at[k]):
                    break
                self.swap(at[k - 1], at[k])

    def insertion(self, lo: int, count: int) -> None:
        """PHP's insertion sort (16 items at most): networks up to five; from six, a linear
        search back for the first six and a search by steps of two after them."""
        if count < 2:
            return
        if count <= 5:
            self.network(range(lo, lo + count))
            return
        for i in range(lo + 1, lo + count):
            j = i - 1
            if not self.gt(j, i):
                continue
            j = self._linear_back(lo, i) if i < lo + 6 else self._pairwise_back(lo, i)
            self.items[j:i + 1] = [self.items[i], *self.items[j:i]]

    def _linear_back(self, lo: int, i: int) -> int:
        j = i - 1
        while j != lo:
            j -= 1
            if not self.gt(j, i):
                return j + 1
        return j

    def _pairwise_back(self, lo: int, i: int) -> int:
        j = i - 1
        while True:
            j -= 2
            if not self.gt(j, i):
                return j + 2 if not self.gt(j + 1, i) else j + 1
            if j == lo:
                return j
            if j == lo + 1:
                return lo + 1 if self.gt(i, lo) else lo

    def partition(self, lo: int, end: int) -> int:
        """Hoare partition around the item at ``lo + 1``; returns the first index past it."""
        pivot, i, j = lo + 1, lo + 2, end - 1
        while True:
            while self.gt(pivot, i):
                i += 1
                if i == j:
                    return i
            j -= 1
            if j == i:
                return i
            while self.gt(j, pivot):
                j -= 1
                if j == i:
                    return i
            self.swap(i, j)
            i += 1
            if i == j:
                return i

    def sort(self, lo: int, count: int) -> None:
        """Quicksort with a median-of-3 (of 5 from 1024 items) pivot, recursing into the
        smaller side; insertion sort from 16 items down."""
        while count > 16:
            end, middle = lo + count, lo + (count >> 1)
            if count >> 10:
                delta = count >> 2
                self.network((lo, lo + delta, middle, middle + delta, end - 1))
            else:
                self.network((lo, middle, end - 1))
            self.swap(lo + 1, middle)
            i = self.partition(lo, end)
            self.swap(lo + 1, i - 1)
            if (i - 1) - lo < end - i:
                self.sort(lo, i - lo - 1)
                lo, count = i, end - i
            else:
                self.sort(i, end - i)
                count = i - lo - 1
        self.insertion(lo, count)


def php_sort(values: Sequence[str]) -> list[str]:
    """``sort($values)`` for a list of strings, as PHP 8 orders it (ties keep their order)."""
    items = list(values)
    for item in items:
        if not isinstance(item, str):
            raise ConfigError("groups", f"every group must be a string, got {item!r}")

    operands = [_operand(item) for item in items]

    def after(a: int, b: int) -> bool:
        result = _compare(operands[a], operands[b])
        return result > 0 if result else a > b

    order = list(range(len(items)))
    _ZendSort(order, after).sort(0, len(order))
    return [items[k] for k in order]


def _or(value: Any, default: Any) -> Any:
    """PHP's ``??``: the default for a missing or null value."""
    return default if value is None else value


def exposure_material(row: Mapping[str, Any]) -> str:
    """The exact text Test Kitchen hashes for ``row`` (a row as served, as JSON reads it)."""
    semantic = {
        "name": row.get("name"),
        "user_identifier_type": row.get("user_identifier_type"),
        "groups": php_sort(_or(row.get("groups"), [])),
        "sample_rate": _or(row.get("sample_rate"), []),
        "stream_name": row.get("stream_name"),
        "schema_id": _or(row.get("schema_id"), DEFAULT_SCHEMA),
        "contextual_attributes": _or(row.get("contextual_attributes"), []),
    }
    return php_json(semantic)


def exposure_version(row: Mapping[str, Any]) -> str:
    """Test Kitchen's ``exposure_version`` of a served row: 16 lower-case hex digits."""
    return hashlib.sha256(exposure_material(row).encode("utf-8")).hexdigest()[:16]
