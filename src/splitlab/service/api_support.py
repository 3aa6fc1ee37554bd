"""What the JSON APIs share: JSON responses, the one bounded JSON body reader, the admin token.

Errors are raised from the tree and turned into responses by :mod:`splitlab.service.problems`.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from splitlab.datadir import ADMIN_TOKEN_FILE as TOKEN_FILE
from splitlab.errors import AuthError, BadRequestError, InvalidTextError, PayloadTooLargeError

JSON_MEDIA_TYPE = "application/json; charset=utf-8"
"""The ``Content-Type`` of every JSON response: Wikimedia's edge config fetcher installs a
config only under exactly this header, and the service answers the same everywhere."""

MAX_BODY_BYTES = 64 * 1024
"""A config row is a few hundred bytes; anything this large is a mistake or an attack."""

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a JSON API body may have (a config row needs 4)."""


@dataclass(frozen=True, slots=True)
class RawEndpoint:
    """An ASGI callable Starlette routes to as it is (a bound method it would wrap in a
    ``Request``/``Response`` adapter). The application serves these routes directly, ahead of
    Starlette's middleware and router (:class:`splitlab.service.app.Service`): they are the
    hottest, and they answer their own errors."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def json_response(content: Any, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> Response:
    """A JSON response serialized with orjson, typed :data:`JSON_MEDIA_TYPE` (Starlette's
    ``JSONResponse`` would say ``application/json`` alone: it adds a charset only to ``text/*``)."""
    return Response(orjson.dumps(content), status_code=status,
                    headers=dict(headers) if headers else None, media_type=JSON_MEDIA_TYPE)


def etag_matches(if_none_match: str | None, *etags: str) -> bool:
    """Whether an ``If-None-Match`` value names one of ``etags`` (weak or strong) or is ``*``."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or any(etag in tags for etag in etags)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body; :class:`PayloadTooLargeError` past ``limit`` bytes (reading stops as
    soon as the declared or received size is over it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"body of {declared} bytes exceeds the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """``body`` parsed as JSON, nested at most :data:`MAX_JSON_DEPTH` deep.

    Raises :class:`BadRequestError` saying what is wrong: empty, malformed or too deep, and
    :class:`InvalidTextError` for a string that is not Unicode (a lone surrogate escape such as
    ``"\\ud83d"``, or bytes that are not UTF-8).
    """
    if not body.strip():
        raise BadRequestError("the body is empty: send a JSON object")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if "surrogate" in str(error) or "UTF-8" in str(error):
            raise InvalidTextError(
                f"the body holds a string that is not valid Unicode (a lone UTF-16 surrogate "
                f"such as \\ud83d, or bytes that are not UTF-8): {error}") from None
        if "depth" in str(error) or "recursion" in str(error):
            raise BadRequestError(
                f"the body is nested deeper than {MAX_JSON_DEPTH} levels") from None
        raise BadRequestError(f"malformed JSON: {error}") from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise BadRequestError(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


async def read_json(request: Request) -> Any:
    """The request body as JSON, at most :data:`MAX_BODY_BYTES` (413 beyond; see
    :func:`parse_json` for the 400s)."""
    return parse_json(await read_body(request))


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, as :func:`read_json` reads it; an empty body is the
    empty object (OFREP clients may send none). :class:`BadRequestError` for any other value."""
    body = await read_body(request)
    value = parse_json(body) if body.strip() else {}
    if not isinstance(value, dict):
        raise BadRequestError("the body must be a JSON object")
    return value


def ensure_admin_token(configured: str | None, data_dir: Path) -> tuple[str, Path | None]:
    """The admin token and the file it lives in (``None`` when it came from the environment).

    Without a configured token, one is generated on first start and stored with mode 0600 in
    ``data_dir``; worker processes starting together all end up with the same one.
    """
    if configured:
        return configured, None
    path = data_dir / TOKEN_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    token = ""
    for _ in range(50):  # another process may be between creating and writing the file
        token = path.read_text(encoding="ascii").strip()
        if token:
            break
        time.sleep(0.02)
    if not token:
        raise AuthError(f"admin token file {path} is empty")
    return token, path


def require_admin(request: Request, token: str) -> None:
    """Raise :class:`AuthError` unless the request carries ``Authorization: Bearer <token>``."""
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise AuthError("this write needs 'Authorization: Bearer <admin token>'")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise AuthError("the admin token is wrong")


def actor(request: Request) -> str:
    """Who made a change, for the history: ``X-Splitlab-Actor`` (printable, ≤ 100) or ``admin``."""
    name = request.headers.get("x-splitlab-actor", "").strip()
    if not name:
        return "admin"
    if len(name) > 100 or not name.isprintable():
        raise BadRequestError("X-Splitlab-Actor must be printable and at most 100 characters")
    return name
