"""The answers of ``POST /v1/events`` (:mod:`splitlab.service.intake`), as EventGate gives them.

EventGate says what happened in the HTTP reason phrase ("All 3 out of 3 events were accepted.",
...). ASGI has no field for a reason phrase and uvicorn always sends the standard one, so every
answer carries EventGate's text in :data:`STATUS_HEADER` instead. The common answers (every event
stored; a hasty batch taken) have no body and are made once per batch size as prepared header
lists; the others are JSON with EventGate's per-event ``{status, event, context}`` entries.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

from splitlab.intake.pipeline import EventStatus
from splitlab.service.api_support import JSON_MEDIA_TYPE, json_response

STATUS_HEADER = "X-Status-Message"
EMPTY = "Request body was empty. Must provide JSON encoded events."
STATUS_HEADER_KEY = STATUS_HEADER.lower().encode()
NO_CONTENT = (b"content-length", b"0")

HeadAnswer = tuple[int, list[tuple[bytes, bytes]]]
"""An answer without a body: status and encoded headers (the intake's common answers)."""
Answer = Response | HeadAnswer


def encoded(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """``headers`` as ASGI header pairs."""
    return [(name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()]


def message(status: int, text: str, status_text: str | None = None) -> Response:
    """A JSON ``{message}`` answer; ``status_text`` (default ``text``) in :data:`STATUS_HEADER`."""
    return json_response({"message": text}, status, {STATUS_HEADER: status_text or text})


def status_text(statuses: Sequence[EventStatus]) -> tuple[int, str]:
    """EventGate's status and reason phrase for a processed batch."""
    total = len(statuses)
    success = sum(1 for s in statuses if s.status == "success")
    invalid = sum(1 for s in statuses if s.status == "invalid")
    errored = total - success - invalid
    failed = invalid + errored
    if not failed:
        return 201, f"All {success} out of {total} events were accepted."
    if invalid == total:
        return 400, f"{invalid} out of {total} events were invalid and not accepted."
    if failed != total:
        return 207, (f"{success} out of {total} events were accepted, but {failed} failed "
                     f"({invalid} invalid and {errored} errored).")
    return 500, (f"{failed} out of {total} events had failures and were not accepted. "
                 f"({invalid} invalid and {errored} errored).")


@functools.lru_cache(maxsize=1024)
def accepted_answer(count: int) -> HeadAnswer:
    """The 201 for a batch of ``count`` events all stored (prepared once per batch size)."""
    return 201, [(STATUS_HEADER_KEY, f"All {count} out of {count} events were accepted."
                  .encode()), NO_CONTENT]


@functools.lru_cache(maxsize=1024)
def hasty_answer(count: int) -> HeadAnswer:
    """The 202 for a hasty batch of ``count`` events."""
    return 202, [(STATUS_HEADER_KEY, f"{count} events hastily received.".encode()), NO_CONTENT]


def batch_response(statuses: Sequence[EventStatus]) -> Answer:
    """EventGate's answer for a processed batch (201, 207, 400 or 500)."""
    if all(s.status == "success" for s in statuses):
        return accepted_answer(len(statuses))
    code, text = status_text(statuses)
    headers = {STATUS_HEADER: text}
    accepted = sum(1 for s in statuses if s.status == "success")
    invalid = [s.to_json() for s in statuses if s.status == "invalid"]
    failed = [s.to_json() for s in statuses if s.status == "error"]
    body = {"message": f"{accepted} out of {len(statuses)} events were accepted.",
            "invalid": invalid, "error": failed}
    try:
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:  # an event nested too deeply to echo: answer null for it
        for entry in (*invalid, *failed):
            if not _writable({"invalid": [entry]}):  # at the depth it has in the body
                entry["event"] = None
        content = orjson.dumps(body)
    return Response(content, code, headers, media_type=JSON_MEDIA_TYPE)


def _writable(value: Any) -> bool:
    """Whether orjson can write ``value`` (it stops at 254 levels of nesting)."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True
