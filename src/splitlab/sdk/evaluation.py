"""The one place where a :class:`~splitlab.core.resolution.Resolution` becomes OpenFeature's
vocabulary, shared by the OpenFeature provider and the OFREP server.

``reason``: ``assigned`` → ``SPLIT``; ``override`` → ``STATIC`` (a forced value, no dynamic
evaluation); ``not_sampled``, ``holdout``, ``layer``, ``targeting`` → ``DEFAULT`` (the unit sees
the default experience); ``inactive`` → ``DISABLED``; ``unknown_experiment`` and ``error`` →
``ERROR`` with the error codes ``FLAG_NOT_FOUND`` and ``GENERAL``. The flag metadata carries
``enrolled`` and splitlab's own ``reason`` always, and what an exposure event needs
(``subject_id``, ``exposure_version``, ``sampling_unit``, ``stream_name``, ``schema_id``) when
the unit is enrolled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from splitlab.core.resolution import Reason, Resolution
from splitlab.sdk.client_payload import experiment_entry

OPENFEATURE_REASONS: Mapping[Reason, str] = {
    Reason.ASSIGNED: "SPLIT",
    Reason.OVERRIDE: "STATIC",
    Reason.NOT_SAMPLED: "DEFAULT",
    Reason.HOLDOUT: "DEFAULT",
    Reason.LAYER: "DEFAULT",
    Reason.TARGETING: "DEFAULT",
    Reason.INACTIVE: "DISABLED",
    Reason.UNKNOWN_EXPERIMENT: "ERROR",
    Reason.ERROR: "ERROR",
}
"""OpenFeature's (and OFREP's) resolution reason for each of splitlab's."""

ERROR_CODES: Mapping[Reason, str] = {
    Reason.UNKNOWN_EXPERIMENT: "FLAG_NOT_FOUND",
    Reason.ERROR: "GENERAL",
}
"""OpenFeature's error code for the reasons that are errors."""


def openfeature_reason(resolution: Resolution) -> str:
    """The OpenFeature reason of ``resolution``."""
    return OPENFEATURE_REASONS[resolution.reason]


def error_code(resolution: Resolution) -> str | None:
    """The OpenFeature error code of ``resolution`` (``None`` unless it is an error)."""
    return ERROR_CODES.get(resolution.reason)


def flag_metadata(resolution: Resolution) -> dict[str, Any]:
    """The flag metadata of ``resolution`` (see the module doc)."""
    metadata: dict[str, Any] = {"enrolled": resolution.enrolled,
                                "reason": resolution.reason.value}
    experiment = resolution.experiment
    if resolution.enrolled and experiment is not None and resolution.subject_id is not None:
        entry = experiment_entry(experiment, resolution.group or "", resolution.subject_id)
        del entry["group"]
        metadata.update(entry)
    return metadata
