"""Targeting conditions compiled once into closures, for evaluation on every request.

:func:`compile_condition` gives the same answers as :func:`splitlab.core.targeting.eval_condition`
(the interpreter, which stays the reference; both pass GrowthBook's published cases). It walks
the condition once and specialises the common shapes — a one-part attribute path on a ``dict``,
string and number literals, ``$in`` over strings, numeric comparisons, ``$eq``/``$ne`` — and
hands anything else to the interpreter's own functions, so semantics are never re-implemented.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from splitlab.core.jsvalues import compare, is_number, strict_equal, to_number, to_string
from splitlab.core.targeting import SavedGroups, attribute_at, holds, value_matches

Predicate = Callable[[Any], bool]
_NUMBERS = (int, float)
_ORDER: Mapping[str, Callable[[int], bool]] = {
    "$lt": lambda c: c < 0, "$lte": lambda c: c <= 0,
    "$gt": lambda c: c > 0, "$gte": lambda c: c >= 0,
}


def compile_condition(
    condition: Mapping[str, Any], saved_groups: SavedGroups | None = None
) -> Callable[[Mapping[str, Any]], bool]:
    """A function of the attributes answering :func:`~splitlab.core.targeting.eval_condition`
    for ``condition`` (and ``saved_groups``)."""
    if not isinstance(condition, Mapping):
        raise TypeError(f"condition must be a mapping, not {type(condition).__name__}")
    return _compile(condition, saved_groups or {})


def _both(clauses: list[Predicate]) -> Predicate:
    if not clauses:
        return lambda subject: True
    if len(clauses) == 1:
        return clauses[0]
    if len(clauses) == 2:
        first, second = clauses
        return lambda subject: first(subject) and second(subject)
    return lambda subject: all(clause(subject) for clause in clauses)


def _compile(condition: Mapping[str, Any], groups: SavedGroups) -> Predicate:
    clauses: list[Predicate] = []
    for key, value in condition.items():
        if key in ("$or", "$nor", "$and", "$not"):
            clauses.append(_logical(key, value, groups))
        else:
            clauses.append(_clause(key, value, groups))
    return _both(clauses)


def _logical(key: str, value: Any, groups: SavedGroups) -> Predicate:
    if key == "$not" and isinstance(value, Mapping):
        inner = _compile(value, groups)
        return lambda subject: not inner(subject)
    if key == "$not" or not isinstance(value, list) or not all(
            isinstance(v, Mapping) for v in value):
        odd = {key: value}  # an unusual shape: the interpreter answers
        return lambda subject: holds(subject, odd, groups)
    parts = [_compile(item, groups) for item in value]
    if key == "$and":
        return _both(parts)
    if key == "$or":
        return lambda subject: not parts or any(part(subject) for part in parts)
    return lambda subject: not (not parts or any(part(subject) for part in parts))


def _clause(path: str, expected: Any, groups: SavedGroups) -> Predicate:
    test = _matcher(expected, groups)
    if "." in path:
        return lambda subject: test(attribute_at(subject, path))
    return lambda subject: test(
        subject.get(path) if type(subject) is dict else attribute_at(subject, path))


def _matcher(expected: Any, groups: SavedGroups) -> Predicate:
    if isinstance(expected, str):
        return lambda a: a == expected if type(a) is str else to_string(a) == expected
    if is_number(expected):
        return lambda a: a == expected if type(a) in _NUMBERS else to_number(a) == expected
    if (isinstance(expected, Mapping) and len(expected) == 1
            and all(isinstance(k, str) and k.startswith("$") for k in expected)):
        ((op, argument),) = expected.items()
        fast = _operator_matcher(op, argument)
        if fast is not None:
            return fast
    return lambda a: value_matches(expected, a, groups)


def _operator_matcher(op: str, argument: Any) -> Predicate | None:
    if op == "$in" and isinstance(argument, list) and all(type(v) is str for v in argument):
        options = frozenset(argument)

        def within(a: Any) -> bool:
            if type(a) is str:
                return a in options
            return type(a) is list and any(type(v) is str and v in options for v in a)
        return within
    if op in _ORDER and is_number(argument):
        order = _ORDER[op]

        def ordered(a: Any) -> bool:
            if type(a) is int or (type(a) is float and a == a):  # a number, not NaN
                return order((a > argument) - (a < argument))
            found = compare(a, argument)
            return found is not None and order(found)
        return ordered
    if op == "$eq":
        return lambda a: strict_equal(a, argument)
    if op == "$ne":
        return lambda a: not strict_equal(a, argument)
    return None
