"""JavaScript's value semantics over JSON values, for conditions written against JavaScript.

GrowthBook's condition language (:mod:`splitlab.core.targeting`) is defined by what its
JavaScript SDK does: ``value + ""``, ``value * 1``, ``!!value``, ``===``, ``<`` and
``JSON.stringify``. These functions give the same answers for the values JSON can carry
(``None`` is ``null``; Python's ``True == 1`` is not JavaScript's ``true === 1``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_RADIX = re.compile(r"0([xXoObB])([0-9a-fA-F]+)")
_BASES = {"x": 16, "o": 8, "b": 2}
_INDEX = re.compile(r"0|[1-9]\d{0,9}")
# Whitespace JavaScript's String.prototype.trim removes (and StringToNumber ignores).
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" \
            "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def is_number(value: object) -> bool:
    """Whether ``value`` is a JavaScript number (a bool is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number_text(value: float) -> str:
    """``Number.prototype.toString()``: the shortest round-trip digits, JavaScript's layout."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    if value < 0:
        return "-" + number_text(-value)
    _, digit_tuple, exponent = Decimal(repr(float(value))).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digit_tuple))
    point = exponent + len(text)  # value = 0.<digits> * 10**point
    digits = text.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        return digits + "0" * (point - count)
    if 0 < point <= 21:
        return digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    power = point - 1
    mantissa = digits if count == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"


def to_string(value: object) -> str:
    """``String(value)``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**21 else number_text(float(value))
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if item is None else to_string(item) for item in value)
    return "[object Object]"


def to_number(value: object) -> float:
    """``Number(value)`` (``NaN`` for what does not convert)."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip(_JS_SPACE)
        if not text:
            return 0.0
        if text in ("Infinity", "+Infinity", "-Infinity"):
            return -math.inf if text[0] == "-" else math.inf
        if _DECIMAL.fullmatch(text):
            return float(text)
        radix = _RADIX.fullmatch(text)
        if radix and all(int(c, 16) < _BASES[radix[1].lower()] for c in radix[2]):
            return float(int(radix[2], _BASES[radix[1].lower()]))
        return math.nan
    if isinstance(value, list):
        return to_number(to_string(value))
    return math.nan


def truthy(value: object) -> bool:
    """``!!value``: objects and arrays are true, even empty ones."""
    if value is None:
        return False
    if isinstance(value, (bool, str)):
        return bool(value)
    if isinstance(value, (int, float)):
        return value != 0 and not math.isnan(value)
    return True


def strict_equal(left: object, right: object) -> bool:
    """``left === right`` for JSON values (two objects or arrays are equal only if identical)."""
    if is_number(left) and is_number(right):
        return left == right
    if isinstance(left, (dict, list)) or isinstance(right, (dict, list)):
        return left is right
    return type(left) is type(right) and left == right


def same_value_zero(left: object, right: object) -> bool:
    """``Array.prototype.includes``'s equality: ``===`` except that NaN equals NaN."""
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return strict_equal(left, right)


def _primitive(value: object) -> object:
    return to_string(value) if isinstance(value, (list, dict)) else value


def compare(left: object, right: object) -> int | None:
    """The abstract relational comparison: -1, 0 or 1, or ``None`` when a side is NaN."""
    a, b = _primitive(left), _primitive(right)
    if isinstance(a, str) and isinstance(b, str):
        x, y = a.encode("utf-16-be"), b.encode("utf-16-be")  # JavaScript compares code units
        return (x > y) - (x < y)
    m, n = to_number(a), to_number(b)
    if math.isnan(m) or math.isnan(n):
        return None
    return (m > n) - (m < n)


def stringify(value: Any) -> str:
    """``JSON.stringify(value)`` (integer-like keys first, as JavaScript orders them)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "null"
    if isinstance(value, (bool, int, float)):
        return to_string(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(stringify(item) for item in value) + "]"
    if isinstance(value, Mapping):
        keys = [str(k) for k in value]
        ordered = sorted((k for k in keys if _INDEX.fullmatch(k) and int(k) < 2**32 - 1), key=int)
        ordered += [k for k in keys if k not in ordered]
        items = {str(k): v for k, v in value.items()}
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{stringify(items[k])}"
                              for k in ordered) + "}"
    return "null"
