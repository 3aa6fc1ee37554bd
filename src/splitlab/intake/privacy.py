"""What the intake never keeps, and the error events that record refused events without it.

Client addresses are never stored: ``http.client_ip`` and the IP-bearing request headers
(:data:`IP_HEADERS`) are removed from every event. The user agent — ``agent.ua_string``, which
Test Kitchen's and Metrics Platform's clients send as a contextual attribute, and the
``user-agent`` request header in ``http.request_headers`` — is kept only on streams whose config
says ``keep_user_agent``. A refused event is stored in an error event scrubbed by the rules of
the stream it was meant for and of the error stream (a user agent survives only when both keep
it; an event naming no configured stream keeps none), and every removed value is also cut out
of the error message, which can quote a value the schema refused.
"""

from __future__ import annotations

from typing import Any

import orjson

from splitlab.intake.sinks import StoredEvent
from splitlab.intake.streams import ERROR_SCHEMA_ID

# Request headers that carry a client address; never stored, whatever the stream says.
IP_HEADERS = frozenset(
    {"x-forwarded-for", "x-client-ip", "x-real-ip", "forwarded", "cf-connecting-ip",
     "true-client-ip", "x-cluster-client-ip"}
)
REMOVED = "[removed]"
MIN_REDACTED = 4  # shorter removed values (a 1-character UA...) are not searched for
NOT_RECORDED = "the event is nested more than 250 levels deep"
_NONE: tuple[str, ...] = ()


def _private_header(name: object, keep_user_agent: bool) -> bool:
    if not isinstance(name, str):
        return False
    lowered = name.lower()
    return lowered in IP_HEADERS or (lowered == "user-agent" and not keep_user_agent)


def scrub(event: dict[str, Any], keep_user_agent: bool) -> tuple[str, ...]:
    """Remove client addresses, and the user agent unless kept, from ``event`` (a shallow copy
    the caller owns; nested objects are replaced, never changed). Returns the string values
    removed (for :func:`redact`), usually none."""
    removed = _NONE
    agent = event.get("agent")
    if not keep_user_agent and isinstance(agent, dict) and "ua_string" in agent:
        removed = _strings(agent["ua_string"])
        event["agent"] = {k: v for k, v in agent.items() if k != "ua_string"}
    http = event.get("http")
    if not isinstance(http, dict):
        return removed
    http = dict(http)
    if "client_ip" in http:
        removed += _strings(http.pop("client_ip"))
    headers = http.get("request_headers")
    if isinstance(headers, dict):
        kept = {}
        for name, value in headers.items():
            if _private_header(name, keep_user_agent):
                removed += _strings(value)
            else:
                kept[name] = value
        http["request_headers"] = kept
    event["http"] = http
    return removed


def _strings(value: object) -> tuple[str, ...]:
    """The strings in a removed value (itself, or those nested in it), for :func:`redact`."""
    if isinstance(value, str):
        return (value,) if value else _NONE
    if isinstance(value, dict):
        return tuple(s for k, v in value.items() for s in (*_strings(k), *_strings(v)))
    if isinstance(value, list):
        return tuple(s for item in value for s in _strings(item))
    return _NONE


def redact(text: str, removed: tuple[str, ...]) -> str:
    """``text`` with every removed value replaced by ``[removed]``: as written, as Python's repr
    and JSON escape it (how validation messages quote values), each address of an
    ``X-Forwarded-For`` list on its own, and a value cut short where the text was truncated."""
    forms: set[str] = set()
    for value in removed:
        for part in (value, *value.split(",")):
            part = part.strip()
            if len(part) >= MIN_REDACTED:
                forms.update({part, repr(part)[1:-1], orjson.dumps(part).decode()[1:-1]})
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REMOVED)
    body = text.removesuffix("...")
    for form in forms:
        for length in range(len(form) - 1, MIN_REDACTED - 1, -1):
            if body.endswith(form[:length]):
                return body[:-length] + REMOVED + "..."
    return text


def error_event(
    raw: Any, message: str, keep_user_agent: bool, ids: tuple[str, str], meta: dict[str, Any]
) -> StoredEvent:
    """An error event (schema ``/error/2.1.0``) for the refused event ``raw``.

    ``keep_user_agent`` is whether both the stream ``raw`` was meant for and the error stream
    keep user agents; ``ids`` is ``(error event id, emitter id)``; ``meta`` holds the error
    event's ``stream``, ``dt`` and, when the request had one, ``request_id``.
    """
    copy = dict(raw) if isinstance(raw, dict) else raw
    removed = scrub(copy, keep_user_agent) if isinstance(copy, dict) else _NONE
    event_id, emitter = ids
    error: dict[str, Any] = {
        "$schema": ERROR_SCHEMA_ID,
        "meta": {**meta, "id": event_id},
        "dt": meta["dt"],
        "emitter_id": emitter,
        "error_type": "ValidationError",
        "message": redact(message, removed) if removed else message,
    }
    try:
        error["raw_event"] = orjson.dumps(copy).decode()
    except orjson.JSONEncodeError:
        error["message"] = f"{error['message']} (raw event not recorded: {NOT_RECORDED})"
    if isinstance(copy, dict):
        if isinstance(copy.get("$schema"), str):
            error["errored_schema_uri"] = copy["$schema"]
        claimed = copy.get("meta")
        if isinstance(claimed, dict) and isinstance(claimed.get("stream"), str):
            error["errored_stream_name"] = claimed["stream"]
    return StoredEvent(event_id, meta["stream"], meta["dt"], orjson.dumps(error))
