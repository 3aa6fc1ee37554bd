"""The metrics catalog: what to measure per unit, read from YAML.

A catalog is ``{metrics: [...]}``; each metric has a ``name`` and a ``kind``:

- ``proportion``: 1 when the unit has at least one event matching ``filter`` after its first
  enrollment (or exposure), else 0;
- ``count``: the number of such events per unit; ``sum``: the sum of their ``value`` (the event's
  numeric ``action_context``);
- ``ratio``: ``Σ numerator / Σ denominator`` over units, each side a ``{kind, filter}`` of
  ``count`` or ``sum``;
- ``sql``: a ``sql`` template (DuckDB dialect) that returns ``(variation, subject_id, outcome)``;
  ``{events}``, ``{units}`` and ``{experiment}`` (a quoted literal) are substituted.

A filter maps event columns (:data:`FILTER_COLUMNS`) to a value or a list of values. Options:
``cuped: {pre_days: N}`` adjusts with the same outcome over the ``N`` days before each unit's
first enrollment; ``sequential: {tau: r}`` adds always-valid intervals with mixing scale ``r``
times the control mean (``r`` defaults to :data:`DEFAULT_TAU`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from splitlab.errors import AnalysisError

FILTER_COLUMNS = frozenset({
    "action", "action_source", "action_context", "site", "sampling_unit", "exposure_version",
})
UNIT_KINDS = ("proportion", "count", "sum")
KINDS = (*UNIT_KINDS, "ratio", "sql")
DEFAULT_TAU = 0.05
"""The mixing scale of sequential intervals when a metric asks for them without a ``tau``."""


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A per-unit aggregate of matching events: ``proportion``, ``count`` or ``sum`` of value.

    ``filter`` is a sorted tuple of ``(column, allowed values)``; ``pre_days`` > 0 measures over
    the days before the unit's first trigger instead of after it.
    """

    kind: str
    filter: tuple[tuple[str, tuple[str, ...]], ...]
    pre_days: int = 0


@dataclass(frozen=True, slots=True)
class Metric:
    """One catalog entry (see the module docstring)."""

    name: str
    kind: str
    outcome: Aggregate | None = None
    denominator: Aggregate | None = None
    sql: str | None = None
    cuped_days: int = 0
    tau: float = 0.0

    @property
    def covariate(self) -> Aggregate | None:
        """The CUPED covariate: the outcome over the pre-period, when asked for."""
        if self.cuped_days <= 0 or self.outcome is None:
            return None
        return Aggregate(self.outcome.kind, self.outcome.filter, self.cuped_days)


def load_catalog(path: Path) -> list[Metric]:
    """Read and validate a metrics catalog; errors name the metric and the field."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AnalysisError(f"cannot read {path}: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise AnalysisError(f"{path} is not valid YAML: {error}") from error
    return parse_catalog(document)


def parse_catalog(document: object) -> list[Metric]:
    """Validate a parsed catalog document (``{metrics: [...]}`` or a bare list)."""
    entries = document.get("metrics") if isinstance(document, Mapping) else document
    if not isinstance(entries, list):
        raise AnalysisError("a metrics catalog is {metrics: [...]} or a list of metrics")
    metrics = [_metric(entry, i) for i, entry in enumerate(entries)]
    names = [m.name for m in metrics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise AnalysisError(f"metric {duplicates[0]!r} is defined twice")
    return metrics


def _metric(entry: object, index: int) -> Metric:
    if not isinstance(entry, Mapping):
        raise AnalysisError(f"metrics[{index}] must be a mapping")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise AnalysisError(f"metrics[{index}].name must be a non-empty string")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise AnalysisError(f"metric {name!r}: kind must be one of {', '.join(KINDS)}")
    cuped = _options(entry, name, "cuped")
    sequential = _options(entry, name, "sequential")
    cuped_days = _number(cuped.get("pre_days", 0), f"metric {name!r}: cuped.pre_days", int)
    default_tau = DEFAULT_TAU if "sequential" in entry else 0.0
    tau = _number(sequential.get("tau", default_tau), f"metric {name!r}: sequential.tau", float)
    if kind == "sql":
        sql = entry.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise AnalysisError(f"metric {name!r}: kind sql needs a sql template")
        if cuped_days:
            raise AnalysisError(f"metric {name!r}: cuped is not available for sql metrics")
        return Metric(name, "sql", sql=sql, tau=tau)
    if kind == "ratio":
        numerator = _aggregate(entry.get("numerator"), f"metric {name!r}: numerator")
        denominator = _aggregate(entry.get("denominator"), f"metric {name!r}: denominator")
        if cuped_days:
            raise AnalysisError(f"metric {name!r}: cuped is not available for ratio metrics")
        return Metric(name, "ratio", numerator, denominator, tau=tau)
    outcome = _aggregate({"kind": kind, "filter": entry.get("filter", {})}, f"metric {name!r}")
    return Metric(name, str(kind), outcome, cuped_days=cuped_days, tau=tau)


def _options(entry: Mapping[str, Any], name: str, key: str) -> Mapping[str, Any]:
    value = entry.get(key) or {}
    if not isinstance(value, Mapping):
        raise AnalysisError(f"metric {name!r}: {key} must be a mapping")
    return value


def _number(value: object, where: str, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise AnalysisError(f"{where} must be a non-negative number")
    if kind is int and not float(value).is_integer():
        raise AnalysisError(f"{where} must be a whole number")
    return kind(value)


def _aggregate(value: object, where: str) -> Aggregate:
    if not isinstance(value, Mapping):
        raise AnalysisError(f"{where} must be a mapping with kind and filter")
    kind = value.get("kind")
    if kind not in UNIT_KINDS:
        raise AnalysisError(f"{where}: kind must be one of {', '.join(UNIT_KINDS)}")
    raw = value.get("filter") or {}
    if not isinstance(raw, Mapping):
        raise AnalysisError(f"{where}: filter must be a mapping of column to value(s)")
    clauses: list[tuple[str, tuple[str, ...]]] = []
    for column, allowed in sorted(raw.items()):
        if column not in FILTER_COLUMNS:
            known = ", ".join(sorted(FILTER_COLUMNS))
            raise AnalysisError(f"{where}: cannot filter on {column!r} (use {known})")
        values = allowed if isinstance(allowed, list) else [allowed]
        if not values or not all(isinstance(v, (str, int, float)) for v in values):
            raise AnalysisError(f"{where}: filter {column!r} needs a value or a list of values")
        clauses.append((column, tuple(str(v) for v in values)))
    return Aggregate(str(kind), tuple(clauses))
