"""What the JSON APIs share: error → HTTP mapping, bounded JSON bodies, the admin token.

Only the service maps the error tree to statuses (DESIGN.md, house rule 4): 4xx bodies say what
was wrong, 5xx bodies say nothing internal.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from splitlab.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
    PreconditionRequiredError,
    SplitlabError,
    UnavailableError,
)

JSON_MEDIA_TYPE = "application/json; charset=utf-8"
"""The ``Content-Type`` of every JSON response: Wikimedia's edge config fetcher installs a
config only under exactly this header, and the service answers the same everywhere."""

MAX_BODY_BYTES = 64 * 1024
"""A config row is a few hundred bytes; anything this large is a mistake or an attack."""

TOKEN_FILE = "admin-token"

_STATUS: tuple[tuple[type[SplitlabError], int], ...] = (
    (PayloadTooLargeError, 413), (BadRequestError, 400), (ConfigError, 422),
    (NotFoundError, 404), (ConflictError, 409),
    (PreconditionRequiredError, 428), (PreconditionFailedError, 412), (AuthError, 401),
    (UnavailableError, 503),
)
RETRY_AFTER_SECONDS = 2


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


def error_response(error: SplitlabError) -> Response:
    """The HTTP form of an error from the tree: ``{"error": code, "message": ..., "field"?}``."""
    status = 400
    for kind, code in _STATUS:
        if isinstance(error, kind):
            status = code
            break
    body: dict[str, Any] = {"error": error.code, "message": str(error)}
    if isinstance(error, ConfigError):
        body["field"] = error.field
    headers = ({"WWW-Authenticate": 'Bearer realm="splitlab"'} if status == 401
               else {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None)
    return json_response(body, status, headers)


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


async def read_json(request: Request) -> Any:
    """The request body as JSON, at most :data:`MAX_BODY_BYTES` (413 beyond, 400 if malformed)."""
    body = await read_body(request)
    if not body.strip():
        raise BadRequestError("the body is empty: send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"malformed JSON: {error}") from None


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
