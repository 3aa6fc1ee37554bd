"""Health checks of a running experiment, computed with every run and stored with it.

Each check is ``{check, ok, reason}``; ``reason`` says what was measured either way.

- ``srm``: the sample ratio mismatch test of the report is not flagged (the report expects the
  split the experiment's row configures on each unit's site: :mod:`splitlab.analysis.srm`).
- ``multiple_groups``: at most :data:`MIXED_LIMIT` of the units were seen in several groups.
- ``no_events``: an enrollment event arrived within the last ``quiet_hours`` (an experiment
  that started less than ``quiet_hours`` ago is given that long).
- ``error_share``: at most :data:`ERROR_LIMIT` of the events naming the experiment went to the
  error stream (refused as invalid).
- ``metrics``: every metric the experiment names could be computed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from splitlab.results.rows import Tally

CHECKS = ("srm", "multiple_groups", "no_events", "error_share", "metrics")
MIXED_LIMIT = 0.01
ERROR_LIMIT = 0.01
DEFAULT_QUIET_HOURS = 24.0


@dataclass(frozen=True, slots=True)
class Check:
    """One health check's outcome."""

    check: str
    ok: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def srm(report: dict[str, Any]) -> Check:
    """Sample ratio mismatch, from the report's ``srm``."""
    test = report["srm"]
    if test["p_value"] is None:
        return Check("srm", True, f"not tested: {test.get('note') or 'no ratio to test'}")
    verdict = "mismatch" if test["flagged"] else "no mismatch"
    return Check("srm", not test["flagged"],
                 f"{verdict}: p = {test['p_value']:.3g} (flagged below {test['alpha']:g})")


def multiple_groups(report: dict[str, Any]) -> Check:
    """Units seen in more than one group."""
    mixed, total = report["units_in_multiple_groups"], report["units_total"]
    share = mixed / total if total else 0.0
    return Check("multiple_groups", share <= MIXED_LIMIT,
                 f"{mixed} of {total} units ({share:.2%}) in several groups "
                 f"(limit {MIXED_LIMIT:.0%})")


def no_events(tally: Tally | None, start: datetime | None, now: datetime,
              quiet_hours: float) -> Check:
    """Enrollment events keep arriving while the experiment runs."""
    last = tally.last_enrollment_us if tally else 0
    since = (now.timestamp() - last / 1e6) / 3600 if last else None
    if since is None:
        running = (now - start).total_seconds() / 3600 if start else None
        if running is not None and running < quiet_hours:
            return Check("no_events", True, f"no enrollment events yet; started {running:.1f} "
                         f"hours ago (allowed {quiet_hours:g})")
        return Check("no_events", False, "no enrollment events at all")
    return Check("no_events", since <= quiet_hours,
                 f"last enrollment event {since:.1f} hours ago (limit {quiet_hours:g})")


def error_share(tally: Tally | None) -> Check:
    """The share of the experiment's events refused as invalid."""
    events, errors = (tally.events, tally.errors) if tally else (0, 0)
    total = events + errors
    share = errors / total if total else 0.0
    return Check("error_share", share <= ERROR_LIMIT,
                 f"{errors} of {total} events ({share:.2%}) refused as invalid "
                 f"(limit {ERROR_LIMIT:.0%})")


def metrics(problem: str | None) -> Check:
    """Whether the experiment's metrics were computed (``problem`` says why not)."""
    if problem is None:
        return Check("metrics", True, "every metric computed")
    return Check("metrics", False, problem)
