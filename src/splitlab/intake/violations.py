"""Why an event is invalid, in the shape EventGate's clients read.

EventGate validates with AJV 6 (``allErrors``) and answers, for each invalid event,
``context.errors`` (every violation: ``keyword``, ``dataPath``, ``schemaPath``, ``params``,
``message``) and ``context.errorsText`` (each violation as ``'<dataPath>' <message>``, joined
by ``", "``). This module writes the same for jsonschema-rs's errors, with AJV 6's English
messages and parameters for the draft-07 keywords, plus ``instancePath`` (the JSON Pointer that
AJV 8 calls it). ``dataPath`` is AJV 6's JavaScript notation: ``.meta.stream``,
``['user-agent']``, ``[0]``.

splitlab's own checks before the schema use the keywords ``type`` and ``required`` as AJV
would, and three of their own: ``stream`` (``meta.stream`` names no stream that takes the
event), ``schema`` (``$schema`` names no usable schema) and ``depth`` (nested too deeply to
store).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jsonschema_rs

Path = Sequence[str | int]
Violation = dict[str, Any]
_IDENTIFIER = re.compile(r"[a-zA-Z$_][a-zA-Z$_0-9]*")
_QUOTED = str.maketrans({"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\f": "\\f",
                         "\t": "\\t"})


def data_path(path: Path) -> str:
    """AJV 6's ``dataPath`` of an instance location: ``.a``, ``['b-c']``, ``[0]``."""
    parts = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _IDENTIFIER.fullmatch(part):
            parts.append(f".{part}")
        else:
            parts.append(f"['{part.translate(_QUOTED)}']")
    return "".join(parts)


def pointer(path: Path, prefix: str = "") -> str:
    """The JSON Pointer (RFC 6901) of a location, after ``prefix``."""
    return prefix + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def violation(keyword: str, path: Path, message: str, params: Mapping[str, Any] | None = None,
              schema_path: Path = ()) -> Violation:
    """One violation in EventGate's (AJV's) shape."""
    return {"keyword": keyword, "dataPath": data_path(path), "instancePath": pointer(path),
            "schemaPath": pointer(schema_path, "#"), "params": dict(params or {}),
            "message": message}


def required(path: Path, name: str) -> Violation:
    """AJV's violation for an object at ``path`` without the property ``name``."""
    return violation("required", path, f"should have required property '{name}'",
                     {"missingProperty": name})


def wrong_type(path: Path, expected: str) -> Violation:
    """AJV's violation for a value at ``path`` that is not of the JSON type ``expected``."""
    return violation("type", path, f"should be {expected}", {"type": expected})


def errors_text(violations: Sequence[Mapping[str, Any]]) -> str:
    """EventGate's ``errorsText``: ``'<dataPath>' <message>`` for each, joined by ``", "``."""
    return ", ".join(f"'{v['dataPath']}' {v['message']}" for v in violations)


def _number(value: Any) -> Any:
    """A limit as JavaScript would print it (``5``, not ``5.0``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _limit(keyword: str, text: str) -> Callable[[Any], tuple[str, dict[str, Any], str]]:
    def build(kind: Any) -> tuple[str, dict[str, Any], str]:
        limit = _number(kind.limit)
        return keyword, {"limit": limit}, text.format(limit)
    return build


def _compare(keyword: str, sign: str) -> Callable[[Any], tuple[str, dict[str, Any], str]]:
    def build(kind: Any) -> tuple[str, dict[str, Any], str]:
        limit = _number(kind.limit)
        params = {"comparison": sign, "limit": limit, "exclusive": len(sign) == 1}
        return keyword, params, f"should be {sign} {limit}"
    return build


_KINDS: dict[type[Any], Callable[[Any], tuple[str, dict[str, Any], str]]] = {
    jsonschema_rs.ValidationErrorKind.Type: lambda k: (
        "type", {"type": ",".join(k.types)}, f"should be {','.join(k.types)}"),
    jsonschema_rs.ValidationErrorKind.Required: lambda k: (
        "required", {"missingProperty": k.property},
        f"should have required property '{k.property}'"),
    jsonschema_rs.ValidationErrorKind.Enum: lambda k: (
        "enum", {"allowedValues": k.options}, "should be equal to one of the allowed values"),
    jsonschema_rs.ValidationErrorKind.Constant: lambda k: (
        "const", {"allowedValue": k.expected_value}, "should be equal to constant"),
    jsonschema_rs.ValidationErrorKind.Format: lambda k: (
        "format", {"format": k.format}, f'should match format "{k.format}"'),
    jsonschema_rs.ValidationErrorKind.Pattern: lambda k: (
        "pattern", {"pattern": k.pattern}, f'should match pattern "{k.pattern}"'),
    jsonschema_rs.ValidationErrorKind.MaxLength: _limit(
        "maxLength", "should NOT be longer than {} characters"),
    jsonschema_rs.ValidationErrorKind.MinLength: _limit(
        "minLength", "should NOT be shorter than {} characters"),
    jsonschema_rs.ValidationErrorKind.MaxItems: _limit(
        "maxItems", "should NOT have more than {} items"),
    jsonschema_rs.ValidationErrorKind.MinItems: _limit(
        "minItems", "should NOT have fewer than {} items"),
    jsonschema_rs.ValidationErrorKind.AdditionalItems: _limit(
        "additionalItems", "should NOT have more than {} items"),
    jsonschema_rs.ValidationErrorKind.MaxProperties: _limit(
        "maxProperties", "should NOT have more than {} properties"),
    jsonschema_rs.ValidationErrorKind.MinProperties: _limit(
        "minProperties", "should NOT have fewer than {} properties"),
    jsonschema_rs.ValidationErrorKind.Minimum: _compare("minimum", ">="),
    jsonschema_rs.ValidationErrorKind.Maximum: _compare("maximum", "<="),
    jsonschema_rs.ValidationErrorKind.ExclusiveMinimum: _compare("exclusiveMinimum", ">"),
    jsonschema_rs.ValidationErrorKind.ExclusiveMaximum: _compare("exclusiveMaximum", "<"),
    jsonschema_rs.ValidationErrorKind.MultipleOf: lambda k: (
        "multipleOf", {"multipleOf": _number(k.multiple_of)},
        f"should be multiple of {_number(k.multiple_of)}"),
    jsonschema_rs.ValidationErrorKind.UniqueItems: lambda k: (
        "uniqueItems", {}, "should NOT have duplicate items"),
    jsonschema_rs.ValidationErrorKind.AnyOf: lambda k: (
        "anyOf", {}, "should match some schema in anyOf"),
    jsonschema_rs.ValidationErrorKind.OneOfNotValid: lambda k: (
        "oneOf", {"passingSchemas": None}, "should match exactly one schema in oneOf"),
    jsonschema_rs.ValidationErrorKind.OneOfMultipleValid: lambda k: (
        "oneOf", {}, "should match exactly one schema in oneOf"),
    jsonschema_rs.ValidationErrorKind.Not: lambda k: ("not", {}, "should NOT be valid"),
    jsonschema_rs.ValidationErrorKind.FalseSchema: lambda k: (
        "false schema", {}, "boolean schema is false"),
    jsonschema_rs.ValidationErrorKind.Contains: lambda k: (
        "contains", {}, "should contain a valid item"),
}


def from_error(error: jsonschema_rs.ValidationError) -> Iterator[Violation]:
    """The violations one jsonschema-rs error stands for (AJV reports each additional
    property on its own; jsonschema-rs lists them in one error)."""
    kind = error.kind
    path, schema_path = error.instance_path, error.schema_path
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        for name in kind.unexpected:
            yield violation("additionalProperties", path, "should NOT have additional properties",
                            {"additionalProperty": name}, schema_path)
        return
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.PropertyNames):
        name = str(kind.error.instance)
        yield violation("propertyNames", path, f"property name '{name}' is invalid",
                        {"propertyName": name}, schema_path)
        return
    build = _KINDS.get(type(kind))
    if build is None:  # keywords AJV 6 has no message for: jsonschema-rs's own text
        yield violation(kind.name, path, error.message, {}, schema_path)
        return
    keyword, params, message = build(kind)
    yield violation(keyword, path, message, params, schema_path)
