"""The assignment debugger's answers: the core's :func:`~splitlab.core.assignment.assign` for
one identifier over every active experiment (the SDK's code path), with the reason in words.

Nothing here is stored or logged: the identifier lives only in the request and the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from splitlab.core.assignment import assign
from splitlab.core.model import Experiment


@dataclass(frozen=True, slots=True)
class Answer:
    """One experiment's answer for the identifier."""

    experiment: str
    identifier_type: str
    applies: bool
    in_sample: bool
    group: str | None
    subject_id: str
    reason: str


def _identifier(text: str, identifier_type: str) -> int | str:
    """``mw-user`` ids are integers in the SDK; the hash of ``str(n)`` is the same either way."""
    return int(text) if identifier_type == "mw-user" and text.isdigit() else text


def answers(experiments: Sequence[Experiment], identifier: str, site: str | None,
            identifier_type: str | None) -> list[Answer]:
    """The answer of each experiment (active ones: the caller filters), by name."""
    out = []
    for experiment in sorted(experiments, key=lambda e: e.name):
        unit = experiment.user_identifier_type
        result = assign(_identifier(identifier, unit), experiment, site)
        rate = experiment.sample_rate.for_site(site)
        where = f"on {site}" if site else "by default"
        applies = identifier_type in (None, unit)
        if not applies:
            reason = (f"does not apply: this experiment samples {unit} identifiers, not "
                      f"{identifier_type}")
        elif result.in_sample:
            reason = f"in sample (rate {rate:.4g} {where}); tk-v1 puts it in {result.group}"
        elif rate == 0:
            reason = f"not in sample: the rate is 0 {where}"
        else:
            reason = (f"not in sample: the rate is {rate:.4g} {where} and this identifier's "
                      "hash falls outside it")
        out.append(Answer(experiment.name, unit, applies, result.in_sample and applies,
                          result.group if applies else None, result.subject_id, reason))
    return out
