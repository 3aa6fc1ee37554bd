"""The one place where errors become HTTP responses (DESIGN.md, house rule 4).

Areas raise errors of the tree (:mod:`splitlab.errors`) and never build error responses
themselves; :func:`exception_handlers` (installed by ``app.py``) turns them into responses:

- the status comes from :data:`STATUS` (the first class that matches);
- the body is the *problem* shape ``{"error": code, "message": "...", "field"?: "..."}`` on every
  route, except under ``/ofrep/``, where the OpenFeature Remote Evaluation Protocol fixes the
  shape: ``{"key"?, "errorCode", "errorDetails"}`` for 400 and 404 (``key`` on the single-flag
  route), ``{"errorDetails"}`` for every other status;
- 401 carries ``WWW-Authenticate``, 429 and 503 ``Retry-After``, 405 ``Allow``;
- a 5xx body says nothing internal: a fixed text per status. An exception outside the tree is a
  500; Starlette re-raises it after the response, so the server logs it once with its traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from splitlab.errors import (
    AnalysisError,
    AuthError,
    BadRequestError,
    ConfigError,
    ConflictError,
    EvaluationError,
    ForbiddenError,
    HeaderError,
    InvalidEventError,
    InvalidTextError,
    NotFoundError,
    OverrideError,
    PayloadTooLargeError,
    PreconditionFailedError,
    PreconditionRequiredError,
    RateLimitedError,
    RemoteError,
    SignatureError,
    SinkError,
    SplitlabError,
    UnavailableError,
    UnsupportedMediaTypeError,
)
from splitlab.service.api_support import json_response

STATUS: tuple[tuple[type[SplitlabError], int], ...] = (
    (PayloadTooLargeError, 413), (UnsupportedMediaTypeError, 415), (BadRequestError, 400),
    (ConfigError, 422),
    (InvalidEventError, 400), (HeaderError, 400), (OverrideError, 400), (SignatureError, 400),
    (AnalysisError, 400), (NotFoundError, 404), (ConflictError, 409),
    (PreconditionRequiredError, 428), (PreconditionFailedError, 412),
    (ForbiddenError, 403), (AuthError, 401), (RateLimitedError, 429),
    (SinkError, 503), (UnavailableError, 503), (RemoteError, 502),
)
"""Error class → HTTP status, most specific first; anything else in the tree is a 500."""

SERVER_ERROR_TEXT = {500: "internal error", 502: "an upstream service failed",
                     503: "temporarily unavailable; retry later"}
"""What a 5xx body says (never the error's own text, which may name hosts or files)."""

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 500: "internal_error",
               502: "upstream_error", 503: "unavailable"}
"""The problem's ``error`` code where there is no error of the tree (Starlette's, and 5xx)."""

RETRY_AFTER_SECONDS = 2
"""What a 503 (a sink or the registry database not reachable yet) asks clients to wait."""

OFREP_PREFIX = "/ofrep/"

_OFREP_CODES: tuple[tuple[type[SplitlabError], str], ...] = (
    (NotFoundError, "FLAG_NOT_FOUND"), (InvalidTextError, "INVALID_CONTEXT"),
    (BadRequestError, "PARSE_ERROR"),
)


def status_of(error: SplitlabError) -> int:
    """The HTTP status of ``error`` (see :data:`STATUS`)."""
    return next((status for kind, status in STATUS if isinstance(error, kind)), 500)


def problem_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The problem shape every non-OFREP error answers with."""
    body = {"error": code, "message": message}
    if field is not None:
        body["field"] = field
    return body


def ofrep_body(error: SplitlabError | None, status: int, message: str, key: str | None
               ) -> dict[str, Any]:
    """OFREP's error shape for ``status`` (``errorCode`` only where the spec defines one)."""
    if status not in (400, 404):
        return {"errorDetails": message}
    code = "GENERAL"
    if isinstance(error, EvaluationError):
        code = error.error_code
    elif error is not None:
        code = next((c for kind, c in _OFREP_CODES if isinstance(error, kind)), code)
    body = {"errorCode": code, "errorDetails": message}
    return {"key": key, **body} if key is not None else body


def _respond(request: Request, status: int, error: SplitlabError | None, message: str,
             headers: Mapping[str, str] | None = None) -> Response:
    if status >= 500:
        message = SERVER_ERROR_TEXT.get(status, SERVER_ERROR_TEXT[500])
    if request.url.path.startswith(OFREP_PREFIX):
        body = ofrep_body(error, status, message, request.path_params.get("key"))
    else:
        code = error.code if error is not None and status < 500 else _HTTP_CODES.get(
            status, "internal_error")
        field = error.field if isinstance(error, ConfigError) else None
        body = problem_body(code, message, field)
    return json_response(body, status, headers)


async def splitlab_error(request: Request, exc: Exception) -> Response:
    """The response for an error of the tree."""
    if not isinstance(exc, SplitlabError):  # pragma: no cover - registered for the tree only
        raise exc
    status = status_of(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="splitlab"'
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after)
    elif status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return _respond(request, status, exc, str(exc), headers)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, method not allowed) in the same shapes."""
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException
        raise exc
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return _respond(request, exc.status_code, None, exc.detail, exc.headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """A 500 that says nothing internal (the server logs the exception)."""
    return _respond(request, 500, None, "")


def exception_handlers() -> dict[Any, Any]:
    """The handlers to give ``Starlette(exception_handlers=...)``."""
    return {SplitlabError: splitlab_error, HTTPException: http_error,
            Exception: unexpected_error}


async def error_response(request: Request, exc: Exception) -> Response:
    """The response the handler :func:`exception_handlers` registers for ``exc``'s class, found
    the way Starlette finds it (the nearest class in its MRO), for routes the application serves
    outside Starlette's middleware."""
    handlers = exception_handlers()
    handler = next(handlers[kind] for kind in type(exc).__mro__ if kind in handlers)
    response: Response = await handler(request, exc)
    return response
