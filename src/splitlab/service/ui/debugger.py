"""The assignment debugger's answers: the core's :func:`~splitlab.core.resolution.resolve` for
one identifier over every experiment that has not ended (the SDK's code path), with its reason
(``assigned``, ``not_sampled``, ``holdout``, ``layer``, ``targeting``, ``inactive``) in words.

Nothing here is stored or logged: the identifier and attributes live only in the request and
the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from splitlab.core.model import Experiment, format_time
from splitlab.core.resolution import Reason, Resolution, resolve
from splitlab.service.ui import split_form


@dataclass(frozen=True, slots=True)
class Answer:
    """One experiment's answer for the identifier (``reason`` is the core's, ``why`` says it
    in words)."""

    experiment: str
    identifier_type: str
    applies: bool
    in_sample: bool
    group: str | None
    subject_id: str | None
    reason: str
    why: str


def parse_attributes(text: str) -> dict[str, Any]:
    """The targeting attributes typed in the form: a JSON object (empty text: none). Raises
    :class:`~splitlab.errors.ConfigError` saying what is wrong otherwise."""
    return split_form.json_object(text, "attributes") or {}


def _identifier(text: str, identifier_type: str) -> int | str:
    """``mw-user`` ids are integers in the SDK; the hash of ``str(n)`` is the same either way."""
    return int(text) if identifier_type == "mw-user" and text.isdigit() else text


def _why(result: Resolution, experiment: Experiment, site: str | None) -> str:
    where = f"on {site}" if site else "by default"
    rate = experiment.sample_rate.for_site(site)
    if result.reason is Reason.ASSIGNED:
        return (f"in sample (traffic {rate:.4g} {where}); {experiment.algorithm} puts it in "
                f"{result.group}")
    if result.reason is Reason.INACTIVE:
        return f"inactive: the experiment starts at {format_time(experiment.start)}"
    if result.reason is Reason.HOLDOUT:
        return "held out: the unit is in a holdout this experiment lists"
    if result.reason is Reason.LAYER:
        return "not eligible: the unit's layer bin is outside this experiment's layer range"
    if result.reason is Reason.TARGETING:
        return "not targeted: the attributes do not satisfy the targeting condition"
    if rate == 0:
        return f"not in sample: no traffic {where}"
    return (f"not in sample: the traffic is {rate:.4g} {where} and this identifier's hash "
            "falls outside it")


def answers(experiments: Sequence[Experiment], identifier: str, site: str | None,
            identifier_type: str | None, *, attributes: Mapping[str, Any] | None = None,
            now: datetime) -> list[Answer]:
    """The answer of each experiment (the caller leaves ended ones out), by name, at ``now``.
    The attributes the condition sees are ``site`` (when given) plus ``attributes``."""
    seen = {**({"site": site} if site else {}), **(attributes or {})}
    out = []
    for experiment in sorted(experiments, key=lambda e: e.name):
        unit = experiment.user_identifier_type
        result = resolve(_identifier(identifier, unit), experiment, site, seen, now=now)
        applies = identifier_type in (None, unit)
        why = _why(result, experiment, site) if applies else (
            f"does not apply: this experiment samples {unit} identifiers, not {identifier_type}")
        out.append(Answer(experiment.name, unit, applies, result.enrolled and applies,
                          result.group if applies else None, result.subject_id,
                          result.reason.value, why))
    return out
