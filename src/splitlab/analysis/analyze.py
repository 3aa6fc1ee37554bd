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
from splitlab.analysis.srm import ConfiguredSplit, Srm, sample_ratio_mismatch
from splitlab.core.model import Experiment
from splitlab.errors import AnalysisError

CORRECTIONS = ("holm", "bh", "none")


@dataclass(frozen=True, slots=True)
class Options:
    """What to analyse. ``groups`` is the configured order (control first); without it the
    groups seen in the data are used, ``control`` first when present, then by name. ``split``
    is the configured split per site that the SRM test expects (equal groups when not given, as
    ``tk-v1`` assigns); :meth:`of` reads both from the experiment's config row."""

    experiment: str
    groups: tuple[str, ...] = ()
    split: ConfiguredSplit | None = None
    trigger: str = "enrollment"
    alpha: float = 0.05
    srm_alpha: float = 0.001
    correction: str = "holm"

    @classmethod
    def of(cls, experiment: Experiment, **options: Any) -> Options:
        """The options of ``experiment``: its groups and configured split, plus ``options``."""
        return cls(experiment.name, experiment.groups, ConfiguredSplit.of(experiment), **options)


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
    """A metric in every group with units. ``error`` says what could not be computed (a group
    with one unit, a zero denominator, no units in control, a sequential test without a scale);
    the comparisons it names carry no effect, every other number is reported."""

    name: str
    kind: str
    cuped: bool
    groups: list[GroupResult]
    error: str | None = None


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
    _check(options)
    aggregates, _ = aggregates_of(metrics)
    engine.create_table("triggered", queries.triggered(options.experiment, options.trigger))
    engine.create_table("units", queries.units(options.experiment, aggregates))
    return report(engine, options, metrics)


def report(engine: Engine, options: Options, metrics: Sequence[Metric] = ()) -> Report:
    """The report of ``options.experiment`` from the engine's table ``units``, as
    :func:`queries.units` builds it with the aggregates :func:`aggregates_of` gives for
    ``metrics`` (SQL metrics also read ``events``). :func:`analyze` builds it from ``events``;
    a caller that keeps ``units`` up to date another way (the results' unit store) passes it
    here."""
    _check(options)
    _, pairs = aggregates_of(metrics)
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
    by_site = _breakdown(engine, "site")
    split = options.split or ConfiguredSplit.equal(options.groups or groups)
    srm = sample_ratio_mismatch(groups, by_site, split, options.srm_alpha, options.groups)
    return Report(
        experiment=options.experiment, engine=engine.name, trigger=options.trigger,
        groups={g: clean.get(g, 0) for g in groups}, units_total=sum(clean.values()) + mixed,
        units_in_multiple_groups=mixed, by_action_source=_breakdown(engine, "action_source"),
        by_site=by_site, by_day=_days(engine), srm=srm,
        metrics=_metrics(engine, options, groups, metrics, pairs), alpha=options.alpha,
        correction=options.correction,
    )


def _check(options: Options) -> None:
    if options.trigger not in queries.TRIGGERS:
        raise AnalysisError(f"trigger must be enrollment or exposure, not {options.trigger!r}")
    if options.correction not in CORRECTIONS:
        raise AnalysisError(f"correction must be one of {', '.join(CORRECTIONS)}")


def _group_order(configured: tuple[str, ...], seen: dict[str, int]) -> list[str]:
    if configured:
        unknown = sorted(set(seen) - set(configured))
        return [*configured, *unknown]
    return sorted(seen, key=lambda g: (g != "control", g))


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


def aggregates_of(
    metrics: Sequence[Metric],
) -> tuple[list[Aggregate], list[tuple[str, str | None]]]:
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
    """The metric in each group and each treatment group against control. A group that cannot
    be compared is reported with its ``n`` and mean, and named in the metric's ``error``."""
    present = [g for g in groups if g in moments]
    cuped = metric.covariate is not None
    if not present or present[0] != groups[0]:
        return MetricResult(metric.name, metric.kind, cuped, [],
                            f"no units in control group {groups[0]!r}")
    if cuped:
        all_groups = [moments[g] for g in present]
        theta, mean_x = stats.cuped_theta(all_groups), stats.pooled_mean_x(all_groups)
        moments = {g: stats.cuped_adjust(m, theta, mean_x) for g, m in moments.items()}
    problems = {g: p for g in present if (p := _unusable(metric, moments[g]))}
    errors = [f"group {g!r} {problem}" for g, problem in problems.items()]
    control = moments[present[0]]
    results = [GroupResult(present[0], control.n, _estimate(metric, control))]
    for group in present[1:]:
        treatment = moments[group]
        result = GroupResult(group, treatment.n, _estimate(metric, treatment))
        if present[0] not in problems and group not in problems:
            result, error = _effect(metric, control, treatment, options, result)
            errors += [f"group {group!r}: {error}"] if error else []
        results.append(result)
    return MetricResult(metric.name, metric.kind, cuped, results, "; ".join(errors) or None)


def _unusable(metric: Metric, group: stats.Moments) -> str | None:
    """Why ``group`` cannot be compared with another (``None`` when it can)."""
    if group.n < 2:
        return f"has {group.n} unit (a comparison needs at least two)"
    if metric.kind == "ratio" and group.mean_x == 0:
        return "has a zero denominator (its units' denominators sum to 0)"
    return None


def _effect(
    metric: Metric, control: stats.Moments, treatment: stats.Moments, options: Options,
    result: GroupResult,
) -> tuple[GroupResult, str | None]:
    """``result`` with the effect of ``treatment`` against ``control``, and what could not be
    computed (the sequential test needs a non-zero control estimate to scale ``tau``)."""
    try:
        test = (stats.ratio if metric.kind == "ratio" else stats.welch)(
            control, treatment, options.alpha
        )
    except ValueError as error:
        return result, str(error)
    result = replace(result, mean=test.treatment, effect=test.effect,
                     relative_effect=test.relative_effect, ci=test.ci,
                     relative_ci=test.relative_ci, p_value=test.p_value)
    if metric.tau <= 0:
        return result, None
    scale = metric.tau * abs(test.control)
    if not scale > 0:
        return result, ("no sequential test: the control mean is 0, so the mixing scale "
                        "tau × |control mean| is 0")
    seq = stats.sequential(test.effect, test.se, scale, options.alpha)
    return replace(result, sequential_ci=seq.ci, sequential_p_value=seq.p_value), None


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
