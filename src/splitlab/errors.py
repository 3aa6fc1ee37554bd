"""The one exception tree of splitlab.

Every class carries a stable ``code`` (a short machine-readable string). Only the service maps
these to HTTP statuses; everything else raises or returns them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class SplitlabError(Exception):
    """Base of every error splitlab raises on purpose."""

    code = "splitlab_error"


class ConfigError(SplitlabError, ValueError):
    """An experiment config row (or a file of them) is invalid.

    ``field`` names the offending field (``""`` when the whole row or file is wrong) and
    ``reason`` says what is wrong with it.
    """

    code = "invalid_config"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


class HeaderError(SplitlabError, ValueError):
    """An ``X-Experiment-Enrollments`` header value is malformed."""

    code = "invalid_header"


class OverrideError(SplitlabError, ValueError):
    """An ``mpo`` override string is malformed."""

    code = "invalid_override"


class NotFoundError(SplitlabError, LookupError):
    """A named experiment, instrument or stream does not exist."""

    code = "not_found"


class ConflictError(SplitlabError):
    """A change would break a rule that protects running experiments."""

    code = "conflict"


class PreconditionFailedError(SplitlabError):
    """An optimistic-concurrency precondition (``If-Match``) did not hold."""

    code = "precondition_failed"


class PreconditionRequiredError(PreconditionFailedError):
    """A write that must be conditional (``If-Match``) came without a precondition."""

    code = "precondition_required"


class AuthError(SplitlabError):
    """Missing or wrong credentials."""

    code = "unauthorized"


class ForbiddenError(AuthError):
    """Credentials were presented but are not valid here (OFREP's 403, unlike 401: none given)."""

    code = "forbidden"


class RateLimitedError(SplitlabError):
    """A client sent more requests than its rate limit; ``retry_after`` is in whole seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidEventError(SplitlabError, ValueError):
    """An event cannot be accepted: unknown stream or schema, or it fails its schema.

    ``violations`` lists every reason, each a JSON object in the shape of EventGate's (AJV's)
    validation errors: ``keyword``, ``dataPath``, ``instancePath``, ``schemaPath``, ``params``,
    ``message``.
    """

    code = "invalid_event"

    def __init__(self, message: str, violations: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.violations = tuple(violations)


class SinkError(SplitlabError):
    """An event sink could not durably store events (it is down, full or refused them)."""

    code = "sink_unavailable"


class UnavailableError(SplitlabError):
    """A part of the service cannot answer yet (its database is unreachable); retry later."""

    code = "unavailable"


class BadRequestError(SplitlabError, ValueError):
    """A request is malformed as a whole: not JSON, empty, or a bad query parameter."""

    code = "bad_request"


class PayloadTooLargeError(BadRequestError):
    """A request body is over the size limit."""

    code = "payload_too_large"


class UnsupportedMediaTypeError(BadRequestError):
    """A request body comes in a content type or content encoding that is not accepted."""

    code = "unsupported_media_type"


class InvalidTextError(BadRequestError):
    """A request body is JSON in form but holds text that is not Unicode: a lone UTF-16 surrogate
    escape (``"\\ud83d"``) or bytes that are not UTF-8."""

    code = "invalid_text"


class EvaluationError(BadRequestError):
    """An OpenFeature (OFREP) evaluation request that cannot be evaluated.

    ``error_code`` is OFREP's ``errorCode`` (``INVALID_CONTEXT``, ``TARGETING_KEY_MISSING``,
    ``PARSE_ERROR``); the service answers 400.
    """

    code = "invalid_evaluation_request"

    def __init__(self, error_code: str, details: str) -> None:
        super().__init__(details)
        self.error_code = error_code


class SignatureError(SplitlabError, ValueError):
    """A signed client payload does not verify (altered, expired, or signed by an unknown key)."""

    code = "invalid_signature"


class AnalysisError(SplitlabError, ValueError):
    """Analysis input is unusable: unreadable events, an unknown experiment, a bad metric."""

    code = "invalid_analysis_input"


class RemoteError(SplitlabError):
    """A splitlab server refused a request (``status``: its HTTP status; 0: not reached)."""

    code = "remote_error"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (HTTP {status})" if status else message)
        self.status = status
