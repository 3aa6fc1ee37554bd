"""Targeting conditions as programs for the C accelerator (``_tkv1.Condition``).

:func:`native_condition` answers, once per condition, whether the C evaluator covers it: literals
(strings, numbers, booleans, ``null``), ``$eq``/``$ne``, ``$in``/``$nin`` over those literals,
``$lt``/``$lte``/``$gt``/``$gte`` on numbers and strings, ``$exists``, the value-level ``$not``,
and ``$and``/``$or``/``$nor``/``$not`` over conditions, on dot-separated attribute paths. Anything
else (regular expressions, versions, ``$size``, ``$elemMatch``, ``$all``, saved groups, ``$type``,
object or array literals, an unusual shape) gets ``None``: the caller keeps the Python evaluator
(:mod:`splitlab.core.condition_compiler`) for that condition, for every call.

The program is nested tuples whose first item is an opcode (``_tkv1_condition.c`` reads them).
What JavaScript's coercions make of a literal is computed here once (its ``Number``, whether it is
how JavaScript prints a number or Python an int), so the C evaluator compares values directly;
it calls back into :mod:`splitlab.core.jsvalues` only for unusual attribute values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from splitlab.core import jsvalues
from splitlab.core.assignment import ACCELERATED
from splitlab.core.targeting import attribute_at

if ACCELERATED:
    from splitlab.core import _tkv1  # type: ignore[attr-defined]

# Opcodes: conditions, then tests of one value (keep in step with _tkv1_condition.c).
TRUE, ALL, ANY, NONE, NOT, PATH = 0, 1, 2, 3, 4, 5
T_ALL, T_NOT, T_NULL, T_NOT_NULL, T_TEXT, T_NUMBER, T_BOOL, T_ORDER, T_EQ, T_IN = range(10, 20)
IN_TRUE, IN_FALSE, IN_NULL, IN_NAN = 1, 2, 4, 8
_ORDERS = {"$lt": 0, "$lte": 1, "$gt": 2, "$gte": 3}
_LISTS = {"$and": ALL, "$or": ANY, "$nor": NONE}
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_INT64 = 2**63
_MAX_DEPTH = 60
HELPERS = (jsvalues.to_string, jsvalues.to_number, jsvalues.truthy, jsvalues.compare,
           attribute_at)
"""The reference's functions the C evaluator calls for unusual attribute values."""

Program = tuple[Any, ...]


class _Outside(Exception):
    """The condition uses something the C evaluator does not cover."""


def program(condition: object) -> Program | None:
    """The C program of ``condition``, or ``None`` when it is outside the C subset."""
    try:
        return _condition(condition, 0)
    except (_Outside, OverflowError):
        return None


def native_condition(condition: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool] | None:
    """``condition`` compiled for the C evaluator, or ``None`` when the accelerator is not built
    or the condition is outside its subset (then Python evaluates it)."""
    found = program(condition) if ACCELERATED else None
    if found is None:
        return None
    compiled: Callable[[Mapping[str, Any]], bool] = _tkv1.Condition(found, HELPERS)
    return compiled


def _condition(condition: object, depth: int) -> Program:
    if type(condition) is not dict or depth > _MAX_DEPTH:
        raise _Outside
    parts: list[Program] = []
    for key, value in condition.items():
        if type(key) is not str:
            raise _Outside
        if key in _LISTS:
            if type(value) is not list:
                raise _Outside
            parts.append((_LISTS[key], tuple(_condition(item, depth + 1) for item in value)))
        elif key == "$not":
            parts.append((NOT, _condition(value, depth + 1)))
        else:
            parts.append((PATH, _path(key), key, _test(value, depth + 1)))
    return parts[0] if len(parts) == 1 else (ALL, tuple(parts))


def _path(path: str) -> tuple[tuple[str, bool, int], ...]:
    """Each part with whether it is ``length`` and its index in a list (-1: none)."""
    parts = []
    for part in path.split("."):
        if part.isdigit() and not part.isascii():
            raise _Outside  # int() of other scripts' digits: the reference's own business
        index = min(int(part), _INT64 - 1) if part.isdigit() else -1
        parts.append((part, part == "length", index))
    return tuple(parts)


def _number(value: object) -> float:
    """``Number(value)`` of a literal; refuses an int that a double does not hold exactly
    (the reference compares it exactly)."""
    number = jsvalues.to_number(value)
    if type(value) is int and number != value:
        raise _Outside
    return number


def _test(expected: object, depth: int) -> Program:
    if depth > _MAX_DEPTH:
        raise _Outside
    kind = type(expected)
    if isinstance(expected, str) and kind is str:
        number = jsvalues.to_number(expected)
        printed = number if jsvalues.number_text(number) == expected else None
        integer = int(expected) if _INTEGER.fullmatch(expected) and expected != "-0" else None
        fits = integer is not None and -_INT64 <= integer < _INT64
        return (T_TEXT, expected, printed, integer if fits else None)
    if kind is bool:
        return (T_BOOL, expected)
    if kind is int or kind is float:
        return (T_NUMBER, _number(expected))
    if expected is None:
        return (T_NULL,)
    if isinstance(expected, dict) and kind is dict and expected and all(
            type(k) is str and k.startswith("$") for k in expected):
        tests = tuple(_operator(op, argument, depth) for op, argument in expected.items())
        return tests[0] if len(tests) == 1 else (T_ALL, tests)
    raise _Outside  # object and array literals compare as JSON text


def _literal(value: object) -> bool:
    return value is None or type(value) in (str, bool, int, float)


def _operator(op: str, argument: object, depth: int) -> Program:
    if op in _ORDERS and _literal(argument):
        text = argument if type(argument) is str else None
        return (T_ORDER, _ORDERS[op], text, float(jsvalues.to_number(argument)))
    if op in ("$eq", "$ne") and _literal(argument):
        return (T_EQ, argument, op == "$ne")
    if op == "$exists":
        return (T_NOT_NULL,) if jsvalues.truthy(argument) else (T_NULL,)
    if op == "$not":
        return (T_NOT, _test(argument, depth + 1))
    if op in ("$in", "$nin") and type(argument) is list and all(map(_literal, argument)):
        flags = 0
        for option, flag in ((True, IN_TRUE), (False, IN_FALSE), (None, IN_NULL)):
            flags |= flag if any(o is option for o in argument) else 0
        numbers = tuple(o for o in argument if type(o) in (int, float))
        flags |= IN_NAN if any(o != o for o in numbers) else 0
        strings = frozenset(o for o in argument if type(o) is str)
        return (T_IN, strings, numbers, flags, op == "$nin")
    raise _Outside
