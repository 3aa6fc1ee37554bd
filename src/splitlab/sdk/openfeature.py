"""An OpenFeature provider for the Python OpenFeature SDK (``pip install openfeature-sdk``).

An experiment is a string flag: the flag key is the experiment name, the evaluation context's
``targeting_key`` is the unit's identifier (the user id for ``mw-user`` experiments), its
attributes are what targeting conditions see, and the value is the assigned group (``variant``
too). Anything else answers the caller's default value. The reason, error code and flag
metadata come from :mod:`splitlab.sdk.evaluation`, the mapping OFREP uses too (``SPLIT``,
``DEFAULT``, ``DISABLED``, ``STATIC``, ``ERROR``). Problems come back as OpenFeature error
codes, never as exceptions. Evaluation has no side effects: send exposures through the
experiment manager.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TypeVar

try:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.exception import ErrorCode
    from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
    from openfeature.provider import AbstractProvider, Metadata
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "splitlab.sdk.openfeature needs the OpenFeature SDK: pip install openfeature-sdk"
    ) from missing

from splitlab.sdk.client import Client
from splitlab.sdk.evaluation import error_code, flag_metadata, openfeature_reason

log = logging.getLogger("splitlab.sdk.openfeature")
T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]


class SplitlabProvider(AbstractProvider):
    """Resolves experiments of ``client`` as OpenFeature string flags."""

    def __init__(self, client: Client) -> None:
        if not isinstance(client, Client):
            raise TypeError(f"client must be a splitlab Client, not {type(client).__name__}")
        super().__init__()
        self.client = client

    def get_metadata(self) -> Metadata:
        """The provider's name."""
        return Metadata(name="splitlab")

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        """The unit's group in experiment ``flag_key``."""
        key = evaluation_context.targeting_key if evaluation_context else None
        if not key:
            return _error(default_value, ErrorCode.TARGETING_KEY_MISSING,
                          "the evaluation context needs a targeting_key (the unit's identifier)")
        attributes = evaluation_context.attributes if evaluation_context else {}
        try:
            found = self.client.resolve(key, flag_key, attributes, source="openfeature")
        except Exception as error:  # evaluation never raises into the host
            log.exception("evaluating %s failed", flag_key)
            self.client.metrics.evaluation_error("openfeature")
            return _error(default_value, ErrorCode.GENERAL, f"evaluation failed: {error}")
        code = error_code(found)
        if code is not None:
            message = (f"no experiment named {flag_key!r}" if code == "FLAG_NOT_FOUND"
                       else f"evaluation failed: {found.detail}")
            return _error(default_value, ErrorCode(code), message)
        reason, metadata = Reason(openfeature_reason(found)), flag_metadata(found)
        if found.group is None:
            return FlagResolutionDetails(default_value, reason=reason, flag_metadata=metadata)
        return FlagResolutionDetails(found.group, reason=reason, variant=found.group,
                                     flag_metadata=metadata)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """Experiments are string flags: ``TYPE_MISMATCH``."""
        return _mismatch(default_value)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        """Experiments are string flags: ``TYPE_MISMATCH``."""
        return _mismatch(default_value)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """Experiments are string flags: ``TYPE_MISMATCH``."""
        return _mismatch(default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        """Experiments are string flags: ``TYPE_MISMATCH``."""
        return _mismatch(default_value)


def _error(default: T, code: ErrorCode, message: str) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(default, error_code=code, error_message=message,
                                 reason=Reason.ERROR)


def _mismatch(default: T) -> FlagResolutionDetails[T]:
    return _error(default, ErrorCode.TYPE_MISMATCH,
                  "splitlab experiments are string flags (the value is the group)")
