"""The statistics of an experiment, from per-group sufficient statistics.

The engines reduce every per-unit outcome to :class:`Moments` per group; everything here works on
those, so it costs microseconds whatever the data size. Only distribution functions come from
``scipy.special`` (``stdtr``/``stdtrit`` for Student's t, ``ndtr``/``ndtri`` for the normal,
``chdtrc`` for chi-square); the tests, the intervals and the corrections are ours, and the tests
check them against ``scipy.stats`` and published examples. Formulas are in ``docs/analysis.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scipy import special


@dataclass(frozen=True, slots=True)
class Moments:
    """A group's ``n`` units' outcome ``y`` and second variable ``x`` (a ratio metric's
    denominator or a CUPED covariate): means, sample variances (``n - 1``) and covariance."""

    n: int
    mean_y: float
    var_y: float
    mean_x: float = 0.0
    var_x: float = 0.0
    cov_xy: float = 0.0


@dataclass(frozen=True, slots=True)
class ChiSquare:
    """A chi-square goodness-of-fit test: statistic, degrees of freedom, p-value, expected."""

    statistic: float
    df: int
    p_value: float
    expected: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment against control: the two estimates, the absolute effect with its standard
    error, interval and p-value, and the relative effect ``treatment / control - 1`` with its
    delta-method standard error and interval."""

    control: float
    treatment: float
    effect: float
    se: float
    df: float
    ci: tuple[float, float]
    p_value: float
    relative_effect: float
    relative_se: float
    relative_ci: tuple[float, float]


def chi_square_gof(observed: Sequence[int], weights: Sequence[float]) -> ChiSquare:
    """Pearson's test of ``observed`` counts against shares proportional to ``weights``:
    ``X² = Σ (O - E)² / E`` with ``E = N w / Σw``, on ``k - 1`` degrees of freedom."""
    if len(observed) != len(weights) or len(observed) < 2:
        raise ValueError("need at least two groups, with one weight per group")
    total, weight_sum = sum(observed), sum(weights)
    expected = tuple(total * w / weight_sum for w in weights)
    if total == 0:
        return ChiSquare(0.0, len(observed) - 1, 1.0, expected)
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    df = len(observed) - 1
    return ChiSquare(statistic, df, float(special.chdtrc(df, statistic)), expected)


def welch(control: Moments, treatment: Moments, alpha: float = 0.05) -> Comparison:
    """Welch's unequal-variances t-test on the mean of ``y``.

    ``se² = s_t²/n_t + s_c²/n_c``; Welch–Satterthwaite ``df = se⁴ / Σ (s²/n)² / (n - 1)``; a
    two-sided p-value and a ``1 - alpha`` interval from Student's t with ``df``.
    """
    if control.n < 2 or treatment.n < 2:
        raise ValueError("Welch's test needs at least two units in each group")
    var_c, var_t = control.var_y / control.n, treatment.var_y / treatment.n
    se = math.sqrt(var_c + var_t)
    denominator = var_c**2 / (control.n - 1) + var_t**2 / (treatment.n - 1)
    df = (var_c + var_t) ** 2 / denominator if denominator > 0 else control.n + treatment.n - 2.0
    effect = treatment.mean_y - control.mean_y
    quantile = float(special.stdtrit(df, 1 - alpha / 2))
    p_value = _two_sided(effect, se, lambda z: float(special.stdtr(df, -abs(z))))
    relative = _relative(control.mean_y, treatment.mean_y, var_c, var_t, alpha)
    return Comparison(control.mean_y, treatment.mean_y, effect, se, df,
                      (effect - quantile * se, effect + quantile * se), p_value, *relative)


def ratio(control: Moments, treatment: Moments, alpha: float = 0.05) -> Comparison:
    """A ratio metric ``R = Σy / Σx`` per group, compared with the delta method (a z-test).

    ``Var(R) ≈ (s_y² / x̄² - 2 ȳ s_xy / x̄³ + ȳ² s_x² / x̄⁴) / n`` for each group.
    """
    var_c, var_t = _ratio_variance(control), _ratio_variance(treatment)
    r_c, r_t = control.mean_y / control.mean_x, treatment.mean_y / treatment.mean_x
    return _z_comparison(r_c, r_t, var_c, var_t, alpha)


def cuped_theta(groups: Sequence[Moments]) -> float:
    """CUPED's ``θ = Cov(y, x) / Var(x)``, both pooled within groups (0 when ``x`` is constant)."""
    covariance = sum((g.n - 1) * g.cov_xy for g in groups)
    variance = sum((g.n - 1) * g.var_x for g in groups)
    return covariance / variance if variance > 0 else 0.0


def cuped_adjust(group: Moments, theta: float, mean_x: float) -> Moments:
    """The group's moments of ``y - θ (x - mean_x)`` (Deng et al. 2013): the same expected
    mean, with variance ``s_y² - 2θ s_xy + θ² s_x²``."""
    mean = group.mean_y - theta * (group.mean_x - mean_x)
    variance = group.var_y - 2 * theta * group.cov_xy + theta**2 * group.var_x
    return Moments(group.n, mean, max(variance, 0.0))


def pooled_mean_x(groups: Sequence[Moments]) -> float:
    """The mean of ``x`` over all units of ``groups``."""
    total = sum(g.n for g in groups)
    return sum(g.n * g.mean_x for g in groups) / total if total else 0.0


@dataclass(frozen=True, slots=True)
class Sequential:
    """An always-valid interval and p-value for an effect (mixture SPRT, normal mixture)."""

    ci: tuple[float, float]
    p_value: float


def sequential(effect: float, se: float, tau: float, alpha: float = 0.05) -> Sequential:
    """The mixture sequential probability ratio test of Johari, Koomen, Pekelis and Walsh
    ("Always valid inference", Operations Research 2022), equivalently the two-sided normal
    mixture boundary of Robbins (1970) / Howard et al. (2021).

    With ``v = se²`` and mixing variance ``τ²``: the likelihood ratio is
    ``Λ = sqrt(v / (v + τ²)) · exp(τ² d² / (2 v (v + τ²)))``; the always-valid p-value is
    ``min(1, 1/Λ)`` and the confidence sequence ``d ± sqrt(v (v + τ²) / τ² ·
    (log((v + τ²) / v) - 2 log α))``. Both hold simultaneously at every look.
    """
    if tau <= 0:
        raise ValueError("the mixing scale tau must be positive")
    if se <= 0:
        return Sequential((effect, effect), 1.0 if effect == 0 else 0.0)
    v, t2 = se * se, tau * tau
    log_lambda = 0.5 * math.log(v / (v + t2)) + t2 * effect**2 / (2 * v * (v + t2))
    half = math.sqrt(v * (v + t2) / t2 * (math.log((v + t2) / v) - 2 * math.log(alpha)))
    return Sequential((effect - half, effect + half), min(1.0, math.exp(-log_lambda)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: ``max_{j ≤ i} min(1, (m - j + 1) p_(j))``."""
    m = len(p_values)
    adjusted, running = [0.0] * m, 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values: ``min_{j ≥ i} min(1, m p_(j) / j)``."""
    m = len(p_values)
    adjusted, running = [0.0] * m, 1.0
    for rank, index in reversed(list(enumerate(sorted(range(m), key=lambda i: p_values[i])))):
        running = min(running, m * p_values[index] / (rank + 1))
        adjusted[index] = min(1.0, running)
    return adjusted


def _ratio_variance(group: Moments) -> float:
    if group.n < 2 or group.mean_x == 0:
        raise ValueError("a ratio metric needs two units and a non-zero denominator per group")
    my, mx = group.mean_y, group.mean_x
    return (group.var_y / mx**2 - 2 * my * group.cov_xy / mx**3
            + my**2 * group.var_x / mx**4) / group.n


def _z_comparison(
    control: float, treatment: float, var_c: float, var_t: float, alpha: float
) -> Comparison:
    effect, se = treatment - control, math.sqrt(var_c + var_t)
    z = float(special.ndtri(1 - alpha / 2))
    p_value = _two_sided(effect, se, lambda s: float(special.ndtr(-abs(s))))
    relative = _relative(control, treatment, var_c, var_t, alpha)
    return Comparison(control, treatment, effect, se, math.inf, (effect - z * se, effect + z * se),
                      p_value, *relative)


def _relative(
    control: float, treatment: float, var_c: float, var_t: float, alpha: float
) -> tuple[float, float, tuple[float, float]]:
    """``treatment / control - 1`` with the delta-method standard error
    ``sqrt(var_t / c² + t² var_c / c⁴)`` and a normal ``1 - alpha`` interval."""
    if control == 0:
        return math.nan, math.nan, (math.nan, math.nan)
    relative = treatment / control - 1
    se = math.sqrt(var_t / control**2 + treatment**2 * var_c / control**4)
    z = float(special.ndtri(1 - alpha / 2))
    return relative, se, (relative - z * se, relative + z * se)


def _two_sided(effect: float, se: float, lower_tail: Callable[[float], float]) -> float:
    """``2 · P(T ≤ -|effect / se|)``; with no variance, 1 for no effect and 0 otherwise."""
    if se == 0:
        return 1.0 if effect == 0 else 0.0
    return min(1.0, 2 * lower_tail(effect / se))
