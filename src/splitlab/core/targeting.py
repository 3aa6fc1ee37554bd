"""Targeting conditions: GrowthBook's condition language (MongoDB-like operators).

:func:`eval_condition` answers whether ``attributes`` satisfy ``condition``, exactly as
GrowthBook's SDKs do (their published ``evalCondition`` cases are the oracle): a key is a
dot-separated attribute path or one of ``$or``, ``$nor``, ``$and``, ``$not``; a value is a
literal (compared after JavaScript's coercions) or an object of operators. A missing attribute is
``null``. An unknown operator, or an invalid regular expression, fails the condition.

:func:`check_condition` is the stricter test a config row must pass: a JSON object whose
operators are all known, so that a typo is refused when the experiment is saved instead of
silently excluding everyone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from splitlab.core.jsvalues import (
    compare,
    is_number,
    same_value_zero,
    strict_equal,
    stringify,
    to_number,
    to_string,
    truthy,
)
from splitlab.errors import ConfigError

SavedGroups = Mapping[str, Any]
_LOGICAL = ("$or", "$nor", "$and", "$not")


def eval_condition(
    attributes: Mapping[str, Any], condition: Mapping[str, Any],
    saved_groups: SavedGroups | None = None,
) -> bool:
    """Whether ``attributes`` satisfy ``condition``; ``saved_groups`` maps the ids that
    ``$inGroup``/``$notInGroup`` name to their member lists."""
    if not isinstance(condition, Mapping):
        raise TypeError(f"condition must be a mapping, not {type(condition).__name__}")
    return holds(attributes, condition, saved_groups or {})


def holds(subject: Any, condition: Any, groups: SavedGroups) -> bool:
    """:func:`eval_condition` on any subject (the interpreter; nested conditions use it too)."""
    if not isinstance(condition, Mapping):
        return True  # JavaScript's Object.entries of a non-object has nothing to fail
    for key, value in condition.items():
        if key == "$or":
            if not _any(subject, value, groups):
                return False
        elif key == "$nor":
            if _any(subject, value, groups):
                return False
        elif key == "$and":
            items = value if isinstance(value, list) else []
            if not all(holds(subject, item, groups) for item in items):
                return False
        elif key == "$not":
            if holds(subject, value, groups):
                return False
        elif not value_matches(value, attribute_at(subject, key), groups):
            return False
    return True


def _any(subject: Any, conditions: Any, groups: SavedGroups) -> bool:
    items = conditions if isinstance(conditions, list) else []
    return not items or any(holds(subject, item, groups) for item in items)


def attribute_at(subject: Any, path: str) -> Any:
    """The value at a dot-separated ``path`` of ``subject`` (``None`` when absent)."""
    current = subject
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part == "length":
            current = len(current)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def _is_operator_object(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(
        isinstance(k, str) and k.startswith("$") for k in value)


def value_matches(
    condition: Any, value: Any, groups: SavedGroups, insensitive: bool = False
) -> bool:
    """Whether one attribute ``value`` satisfies a literal or an object of operators."""
    if isinstance(condition, str):
        if insensitive:
            return to_string(value).lower() == condition.lower()
        return to_string(value) == condition
    if isinstance(condition, bool):
        return value is not None and truthy(value) == condition
    if is_number(condition):
        return bool(to_number(value) == condition)
    if condition is None:
        return value is None
    if not _is_operator_object(condition):
        return stringify(value) == stringify(condition)
    return all(_operator(op, value, expected, groups) for op, expected in condition.items())


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    return "number" if is_number(value) else "object"


def _fold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _is_in(actual: Any, expected: Any, insensitive: bool = False) -> bool:
    options = expected if isinstance(expected, list) else []
    if insensitive:
        options = [_fold(o) for o in options]
    values = actual if isinstance(actual, list) else [actual]
    return any(same_value_zero(_fold(v) if insensitive else v, o)
               for v in values for o in options)


def _all(actual: Any, expected: Any, groups: SavedGroups, insensitive: bool) -> bool:
    if not isinstance(expected, list) or not isinstance(actual, list):
        return False
    return all(any(value_matches(e, a, groups, insensitive) for a in actual) for e in expected)


def _elem_match(actual: Any, expected: Any, groups: SavedGroups) -> bool:
    if not isinstance(actual, list):
        return False
    if _is_operator_object(expected):
        return any(truthy(a) and value_matches(expected, a, groups) for a in actual)
    return any(truthy(a) and holds(a, expected, groups) for a in actual)


@lru_cache(maxsize=256)
def _regex(pattern: str, insensitive: bool) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.IGNORECASE if insensitive else 0)
    except re.error:
        return None


def _matches(actual: Any, expected: Any, insensitive: bool) -> bool:
    pattern = _regex(to_string(expected), insensitive)
    return pattern is not None and pattern.search(to_string(actual)) is not None


_VERSION_STRIP = re.compile(r"^v|\+.*\Z", re.DOTALL)
_VERSION_SPLIT = re.compile(r"[-.]")
_DIGITS = re.compile(r"[0-9]+")


def padded_version(value: Any) -> str:
    """A version string that compares as text the way the versions compare (``1.10 > 1.9``,
    ``1.0.0 > 1.0.0-beta``): numeric parts padded to 5 places, a release marked ``~``."""
    text = to_string(value) if is_number(value) else value
    if not isinstance(text, str) or not text:
        text = "0"
    parts = _VERSION_SPLIT.split(_VERSION_STRIP.sub("", text))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5) if _DIGITS.fullmatch(p) else p for p in parts)


def _version(test: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    def check(actual: Any, expected: Any) -> bool:
        left = padded_version(actual).encode("utf-16-be")
        right = padded_version(expected).encode("utf-16-be")
        return test((left > right) - (left < right))
    return check


def _ordered(test: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    def check(actual: Any, expected: Any) -> bool:
        order = compare(actual, expected)
        return order is not None and test(order)
    return check


_COMPARISONS: Mapping[str, Callable[[Any, Any], bool]] = {
    "$veq": _version(lambda c: c == 0), "$vne": _version(lambda c: c != 0),
    "$vgt": _version(lambda c: c > 0), "$vgte": _version(lambda c: c >= 0),
    "$vlt": _version(lambda c: c < 0), "$vlte": _version(lambda c: c <= 0),
    "$lt": _ordered(lambda c: c < 0), "$lte": _ordered(lambda c: c <= 0),
    "$gt": _ordered(lambda c: c > 0), "$gte": _ordered(lambda c: c >= 0),
    "$eq": strict_equal, "$ne": lambda a, e: not strict_equal(a, e),
    "$exists": lambda a, e: (a is not None) if truthy(e) else (a is None),
    "$in": lambda a, e: isinstance(e, list) and _is_in(a, e),
    "$ini": lambda a, e: isinstance(e, list) and _is_in(a, e, True),
    "$nin": lambda a, e: isinstance(e, list) and not _is_in(a, e),
    "$nini": lambda a, e: isinstance(e, list) and not _is_in(a, e, True),
    "$regex": lambda a, e: _matches(a, e, False),
    "$regexi": lambda a, e: _matches(a, e, True),
    "$type": lambda a, e: _type_of(a) == e,
}
_WITH_GROUPS = ("$inGroup", "$notInGroup", "$not", "$size", "$elemMatch", "$all", "$alli")
OPERATORS = frozenset({*_COMPARISONS, *_WITH_GROUPS, *_LOGICAL})
"""Every operator the language knows."""


def _operator(op: str, actual: Any, expected: Any, groups: SavedGroups) -> bool:
    simple = _COMPARISONS.get(op)
    if simple is not None:
        return simple(actual, expected)
    if op in ("$inGroup", "$notInGroup"):
        members = groups.get(to_string(expected))
        found = _is_in(actual, members if truthy(members) else [])
        return found if op == "$inGroup" else not found
    if op == "$not":
        return not value_matches(expected, actual, groups)
    if op == "$size":
        return isinstance(actual, list) and value_matches(expected, len(actual), groups)
    if op == "$elemMatch":
        return _elem_match(actual, expected, groups)
    if op in ("$all", "$alli"):
        return _all(actual, expected, groups, op == "$alli")
    return False  # an unknown operator fails, as in every GrowthBook SDK


def referenced_attributes(condition: Mapping[str, Any]) -> frozenset[str]:
    """The top-level attributes ``condition`` reads: the first segment of every attribute path,
    through ``$or``, ``$nor``, ``$and`` (lists of conditions) and ``$not`` (a condition).
    Operators applied to an attribute (``$elemMatch`` too) read only that attribute."""
    found: set[str] = set()
    pending: list[Any] = [condition]
    while pending:
        current = pending.pop()
        if not isinstance(current, Mapping):
            continue
        for key, value in current.items():
            if key in ("$or", "$nor", "$and"):
                pending.extend(value if isinstance(value, list) else [])
            elif key == "$not":
                pending.append(value)
            else:
                found.add(key.split(".", 1)[0])
    return frozenset(found)


def check_condition(condition: object, where: str = "targeting") -> None:
    """Refuse (:class:`~splitlab.errors.ConfigError`) a condition that is not a JSON object or
    uses an operator the language does not know (attribute paths may start with ``$``)."""
    if not isinstance(condition, Mapping):
        raise ConfigError(where, f"must be a condition object, got {condition!r}")
    for key, value in condition.items():
        place = f"{where}.{key}"
        if key in ("$or", "$nor", "$and"):
            if not isinstance(value, list):
                raise ConfigError(place, "must be a list of conditions")
            for index, item in enumerate(value):
                check_condition(item, f"{place}[{index}]")
        elif key == "$not":
            check_condition(value, place)
        else:
            _check_value(value, place)


def _check_value(value: object, where: str) -> None:
    if not _is_operator_object(value):
        return  # a literal, compared as JSON
    assert isinstance(value, Mapping)
    for op, argument in value.items():
        place = f"{where}.{op}"
        if op not in OPERATORS or op in ("$or", "$nor", "$and"):
            raise ConfigError(place, "is not an operator of the condition language")
        if op in ("$not", "$size"):
            _check_value(argument, place)
        elif op == "$elemMatch":
            (_check_value if _is_operator_object(argument) else check_condition)(argument, place)
        elif op in ("$all", "$alli") and isinstance(argument, list):
            for index, item in enumerate(argument):
                _check_value(item, f"{place}[{index}]")
