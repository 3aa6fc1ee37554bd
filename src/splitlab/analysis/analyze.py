"""One analysis of one experiment: units per group, sample ratio mismatch and metric effects.

The engine aggregates (see :mod:`splitlab.analysis.queries`); the statistics run here, on the
per-group moments it returns (see :mod:`splitlab.analysis.stats`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from splitlab.analysis import queries, stats
from splitlab.analysis.engines import Engine
from splitlab.analysis.metrics import Aggregate, Metric
from splitlab.errors import AnalysisError

CORRECTIONS = ("holm", "bh", "none")


@dataclass(frozen=True, slots=True)
class Options:
    """What to analyse. ``groups`` is the configured order (control first); without it the
    groups seen in the data are used, ``control`` first when present, then by name. ``weights``
    are the configured shares of the groups (equal when not given, as ``tk-v1`` assigns)."""

    experiment: str
    groups: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    trigger: str = "enrollment"
    alpha: float = 0.05
    srm_alpha: float = 0.001
    correction: str = "holm"


@dataclass(frozen=True, slots=True)
class Srm:
    """The sample ratio mismatch test over unmixed units (``statistic`` and ``p_value`` are
    ``None`` when fewer than two groups are known: pass the configured groups)."""

    statistic: float | None
    df: int
    p_value: float | None
    alpha: float
    flagged: bool
    observed: dict[str, float]
    expected: dict[str, float]
    observed_units: dict[str, int]
    expected_units: dict[str, float]


@dataclass(frozen=True, slots=True)
class GroupResult:
    """A metric in one group; the effect fields compare it with control (``None`` for control)."""

    group: str
    n: int
    mean: float
    effect: float | None = None
    relative_effect: float | None = None
    ci: tuple[float, float] | None = None
    relative_ci: tuple[float, float] | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    sequential_ci: tuple[float, float] | None = None
    sequential_p_value: float | None = None


@dataclass(frozen=True, slots=True)
class MetricResult:
    name: str
    kind: str
    cuped: bool
    groups: list[GroupResult]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything ``splitlab analyze`` prints (see ``docs/analysis.md`` for the JSON form)."""

    experiment: str
    engine: str
    trigger: str
    groups: dict[str, int]
    units_total: int
    units_in_multiple_groups: int
    by_action_source: dict[str, dict[str, int]]
    by_site: dict[str, dict[str, int]]
    by_day: dict[str, dict[str, int]]
    srm: Srm
    metrics: list[MetricResult] = field(default_factory=list)
    alpha: float = 0.05
    correction: str = "holm"


def analyze(engine: Engine, options: Options, metrics: Sequence[Metric] = ()) -> Report:
    """Analyse ``options.experiment`` on the engine's ``events``."""
    if options.trigger not in queries.TRIGGERS:
        raise AnalysisError(f"trigger must be enrollment or exposure, not {options.trigger!r}")
    if options.correction not in CORRECTIONS:
        raise AnalysisError(f"correction must be one of {', '.join(CORRECTIONS)}")
    aggregates, pairs = _aggregates(metrics)
    engine.create_table("triggered", queries.triggered(options.experiment, options.trigger))
    engine.create_table("units", queries.units(options.experiment, aggregates))
    clean: dict[str, int] = {}
    mixed = 0
    for variation, is_mixed, count in engine.query(queries.counts(None)):
        if is_mixed:
            mixed += int(count)
        else:
            clean[variation] = clean.get(variation, 0) + int(count)
    if not clean and not mixed:
        raise AnalysisError(f"no {options.trigger} events for experiment {options.experiment!r}")
    groups = _group_order(options.groups, clean)
    srm = _srm(groups, clean, options)
    return Report(
        experiment=options.experiment, engine=engine.name, trigger=options.trigger,
        groups={g: clean.get(g, 0) for g in groups}, units_total=sum(clean.values()) + mixed,
        units_in_multiple_groups=mixed, by_action_source=_breakdown(engine, "action_source"),
        by_site=_breakdown(engine, "site"), by_day=_days(engine), srm=srm,
        metrics=_metrics(engine, options, groups, metrics, pairs), alpha=options.alpha,
        correction=options.correction,
    )


def _group_order(configured: tuple[str, ...], seen: dict[str, int]) -> list[str]:
    if configured:
        unknown = sorted(set(seen) - set(configured))
        return [*configured, *unknown]
    return sorted(seen, key=lambda g: (g != "control", g))


def _srm(groups: list[str], counts: dict[str, int], options: Options) -> Srm:
    weights = list(options.weights) or [1.0] * len(options.groups or groups)
    if len(weights) < len(groups):  # groups seen but not configured are expected to be empty
        weights += [0.0] * (len(groups) - len(weights))
    positive = [i for i, w in enumerate(weights) if w > 0]
    unexpected = sum(counts.get(groups[i], 0) for i, w in enumerate(weights) if w <= 0)
    observed = [counts.get(groups[i], 0) for i in positive]
    total = sum(counts.values())
    weight_sum = sum(weights)
    observed_shares = {g: (counts.get(g, 0) / total if total else 0.0) for g in groups}
    expected_shares = {g: w / weight_sum for g, w in zip(groups, weights, strict=True)}
    observed_units = {g: counts.get(g, 0) for g in groups}
    expected_units = {g: total * share for g, share in expected_shares.items()}
    if len(positive) < 2:
        return Srm(None, 0, None, options.srm_alpha, False, observed_shares, expected_shares,
                   observed_units, expected_units)
    test = stats.chi_square_gof(observed, [weights[i] for i in positive])
    p_value = 0.0 if unexpected else test.p_value
    return Srm(math.inf if unexpected else test.statistic, test.df, p_value, options.srm_alpha,
               p_value < options.srm_alpha, observed_shares, expected_shares, observed_units,
               expected_units)


def _breakdown(engine: Engine, column: str) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for variation, key, count in sorted(engine.query(queries.counts(column))):
        table.setdefault(str(key), {})[variation] = int(count)
    return table


def _days(engine: Engine) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for variation, day, count in sorted(engine.query(queries.counts("day"))):
        label = datetime.fromtimestamp(int(day) * 86_400, UTC).strftime("%Y-%m-%d")
        table.setdefault(label, {})[variation] = int(count)
    return table


def _aggregates(metrics: Sequence[Metric]) -> tuple[list[Aggregate], list[tuple[str, str | None]]]:
    """The distinct aggregates the declarative metrics need, and per such metric the columns
    (``a<i>``) of its outcome and of its denominator or covariate."""
    aggregates: list[Aggregate] = []

    def column(aggregate: Aggregate | None) -> str | None:
        if aggregate is None:
            return None
        if aggregate not in aggregates:
            aggregates.append(aggregate)
        return f"a{aggregates.index(aggregate)}"

    pairs: list[tuple[str, str | None]] = []
    for metric in metrics:
        if metric.outcome is not None:
            second = metric.denominator if metric.kind == "ratio" else metric.covariate
            pairs.append((column(metric.outcome) or "", column(second)))
    return aggregates, pairs


def _metrics(
    engine: Engine, options: Options, groups: list[str], metrics: Sequence[Metric],
    pairs: list[tuple[str, str | None]],
) -> list[MetricResult]:
    if not metrics:
        return []
    declarative = [m for m in metrics if m.outcome is not None]
    moments: dict[str, dict[str, stats.Moments]] = {m.name: {} for m in metrics}
    if declarative:
        for row in engine.query(queries.moments("units", pairs)):
            for i, metric in enumerate(declarative):
                moments[metric.name][row[0]] = _moments(row[1], row[2 + 5 * i : 7 + 5 * i])
    for number, metric in enumerate(metrics):
        if metric.sql is not None:
            table = f"metric_{number}"
            engine.create_table(table, queries.template(metric.sql, options.experiment))
            rows = engine.query(queries.moments(table, [("outcome", None)]))
            moments[metric.name] = {row[0]: _moments(row[1], row[2:7]) for row in rows}
    results = [_compare(metric, groups, moments[metric.name], options) for metric in metrics]
    return _adjust(results, options.correction)


def _moments(n: Any, values: Sequence[Any]) -> stats.Moments:
    mean_y, var_y, mean_x, var_x, cov = (float(v) if v is not None else 0.0 for v in values)
    return stats.Moments(int(n), mean_y, var_y, mean_x, var_x, cov)


def _compare(
    metric: Metric, groups: list[str], moments: dict[str, stats.Moments], options: Options
) -> MetricResult:
    present = [g for g in groups if g in moments]
    if not present or present[0] != groups[0]:
        raise AnalysisError(f"metric {metric.name!r}: no units in control group {groups[0]!r}")
    cuped = metric.covariate is not None
    if cuped:
        all_groups = [moments[g] for g in present]
        theta, mean_x = stats.cuped_theta(all_groups), stats.pooled_mean_x(all_groups)
        moments = {g: stats.cuped_adjust(m, theta, mean_x) for g, m in moments.items()}
    control = moments[present[0]]
    estimate = _estimate(metric, control)
    results = [GroupResult(present[0], control.n, estimate)]
    for group in present[1:]:
        treatment = moments[group]
        try:
            test = (stats.ratio if metric.kind == "ratio" else stats.welch)(
                control, treatment, options.alpha
            )
        except ValueError as error:
            raise AnalysisError(f"metric {metric.name!r}, group {group!r}: {error}") from error
        result = GroupResult(
            group, treatment.n, test.treatment, test.effect, test.relative_effect, test.ci,
            test.relative_ci, test.p_value,
        )
        if metric.tau > 0:
            scale = metric.tau * abs(test.control)
            seq = stats.sequential(test.effect, test.se, scale, options.alpha)
            result = replace(result, sequential_ci=seq.ci, sequential_p_value=seq.p_value)
        results.append(result)
    return MetricResult(metric.name, metric.kind, cuped, results)


def _estimate(metric: Metric, group: stats.Moments) -> float:
    if metric.kind == "ratio":
        return group.mean_y / group.mean_x if group.mean_x else math.nan
    return group.mean_y


def _adjust(results: list[MetricResult], correction: str) -> list[MetricResult]:
    """Fill ``p_value_adjusted`` over every (metric, treatment group) p-value."""
    slots = [(i, j) for i, r in enumerate(results) for j, g in enumerate(r.groups)
             if g.p_value is not None]
    raw = [results[i].groups[j].p_value or 0.0 for i, j in slots]
    adjusted = {"holm": stats.holm, "bh": stats.benjamini_hochberg}.get(correction, list)(raw)
    for (i, j), value in zip(slots, adjusted, strict=True):
        results[i].groups[j] = replace(results[i].groups[j], p_value_adjusted=value)
    return results
