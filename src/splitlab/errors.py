"""The one exception tree of splitlab.

Every class carries a stable ``code`` (a short machine-readable string). Only the service maps
these to HTTP statuses; everything else raises or returns them.
"""

from __future__ import annotations


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


class InvalidEventError(SplitlabError, ValueError):
    """An event cannot be accepted: unknown stream or schema, or it fails its schema."""

    code = "invalid_event"


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


class SignatureError(SplitlabError, ValueError):
    """A signed client payload does not verify (altered, expired, or signed by an unknown key)."""

    code = "invalid_signature"


class AnalysisError(SplitlabError, ValueError):
    """Analysis input is unusable: unreadable events, an unknown experiment, a bad metric."""

    code = "invalid_analysis_input"
