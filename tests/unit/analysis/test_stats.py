"""Statistics against independent oracles: scipy.stats, published worked examples, simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from splitlab.analysis import stats


def moments(y: np.ndarray, x: np.ndarray | None = None) -> stats.Moments:
    if x is None:
        return stats.Moments(len(y), float(y.mean()), float(y.var(ddof=1)))
    return stats.Moments(len(y), float(y.mean()), float(y.var(ddof=1)), float(x.mean()),
                         float(x.var(ddof=1)), float(np.cov(y, x, ddof=1)[0, 1]))


@pytest.mark.parametrize("seed", range(6))
def test_chi_square_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    observed = rng.integers(50, 5000, size=k).tolist()
    weights = rng.uniform(0.5, 3, size=k).tolist()
    ours = stats.chi_square_gof(observed, weights)
    expected = np.array(weights) / sum(weights) * sum(observed)
    oracle = scipy_stats.chisquare(observed, expected)
    assert ours.statistic == pytest.approx(oracle.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(oracle.pvalue, rel=1e-9, abs=1e-300)
    assert ours.expected == pytest.approx(expected.tolist(), rel=1e-12)


def test_chi_square_mendel_peas() -> None:
    """Mendel's dihybrid cross, 315/108/101/32 against 9:3:3:1: X² = 0.470, p = 0.925."""
    result = stats.chi_square_gof([315, 108, 101, 32], [9, 3, 3, 1])
    assert result.statistic == pytest.approx(0.470, abs=5e-4)
    assert result.df == 3
    assert result.p_value == pytest.approx(0.925, abs=5e-4)


@pytest.mark.parametrize("seed", range(6))
def test_welch_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    control = rng.exponential(2.0, size=int(rng.integers(5, 400)))
    treatment = rng.normal(2.3, 3.0, size=int(rng.integers(5, 400)))
    ours = stats.welch(moments(control), moments(treatment), alpha=0.05)
    oracle = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    interval = oracle.confidence_interval(0.95)
    assert ours.effect / ours.se == pytest.approx(oracle.statistic, rel=1e-10)
    assert ours.df == pytest.approx(oracle.df, rel=1e-10)
    assert ours.p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    assert ours.ci == pytest.approx((interval.low, interval.high), rel=1e-9)


def test_welch_published_example() -> None:
    """Wikipedia, "Welch's t-test", example 1: t = -2.46, df = 24.99 (25.0), p = 0.021."""
    a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    result = stats.welch(moments(np.array(a2)), moments(np.array(a1)))
    assert result.effect / result.se == pytest.approx(-2.46, abs=0.005)
    assert result.df == pytest.approx(24.99, abs=0.005)
    assert result.p_value == pytest.approx(0.021, abs=0.0005)


def test_ratio_delta_method_equals_linearisation() -> None:
    """Var(Σy/Σx) by the delta method equals the variance of the linearised mean
    (ȳ - R x̄) / x̄, computed here directly from the data."""
    rng = np.random.default_rng(7)
    groups = []
    for rate in (3.0, 3.3):
        x = rng.poisson(rate, size=3000).astype(float) + 1
        y = rng.binomial(x.astype(int), 0.2).astype(float)
        groups.append((y, x))
    ours = stats.ratio(moments(*groups[0]), moments(*groups[1]))
    variances = []
    for y, x in groups:
        r = y.sum() / x.sum()
        variances.append(np.var(y - r * x, ddof=1) / (len(y) * x.mean() ** 2))
    assert ours.se == pytest.approx(math.sqrt(sum(variances)), rel=1e-9)
    assert ours.p_value == pytest.approx(2 * scipy_stats.norm.sf(abs(ours.effect / ours.se)))


def test_corrections_hand_computed() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, max(0.06, 0.04*1)=0.06.
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: 0.04*4/4=0.04, 0.03*4/3=0.04, 0.01*4/2=0.02, 0.005*4/1=0.02.
    assert stats.benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_benjamini_hochberg_matches_scipy() -> None:
    p = np.random.default_rng(3).uniform(0, 0.2, size=30)
    assert stats.benjamini_hochberg(p.tolist()) == pytest.approx(
        scipy_stats.false_discovery_control(p).tolist(), rel=1e-12
    )


def test_relative_interval_coverage_by_simulation() -> None:
    """About 95% of 95% intervals for the relative effect contain the truth.

    2,000 seeded experiments (1,000 skewed outcomes per group, true relative effect +5% on the
    mean). With the right coverage 0.95, the count of covering intervals is Binomial(2000, 0.95):
    standard deviation 9.7, so 1,900 ± 40 (4.1 sd) fails by chance about once in 20,000 runs,
    while a delta method that dropped the control's variance covers about 81% and fails.
    """
    rng = np.random.default_rng(2026)
    reps, n, truth = 2000, 1000, 0.05
    control = rng.gamma(0.5, 4.0, size=(reps, n))  # mean 2, skewed
    treatment = rng.gamma(0.5, 4.0 * (1 + truth), size=(reps, n))
    covered = 0
    for c, t in zip(control, treatment, strict=True):
        low, high = stats.welch(moments(c), moments(t)).relative_ci
        covered += low <= truth <= high
    assert abs(covered - 1900) <= 40, covered


def test_ratio_relative_interval_coverage_by_simulation() -> None:
    """The same for a ratio metric (edits per click), true relative effect +10%."""
    rng = np.random.default_rng(11)
    reps, n, p_c, p_t = 2000, 800, 0.2, 0.22
    covered = 0
    for _ in range(reps):
        sides = []
        for p in (p_c, p_t):
            x = rng.poisson(3.0 * rng.gamma(2.0, 0.5, size=n)).astype(float)
            sides.append(moments(rng.binomial(x.astype(int), p).astype(float), x))
        low, high = stats.ratio(*sides).relative_ci
        covered += low <= p_t / p_c - 1 <= high
    assert abs(covered - 1900) <= 40, covered


def test_cuped_keeps_the_effect_and_shrinks_the_interval() -> None:
    rng = np.random.default_rng(5)
    sides = []
    for lift in (1.0, 1.1):
        activity = rng.gamma(2.0, 0.5, size=4000)
        pre = rng.poisson(3.0 * activity).astype(float)
        post = rng.poisson(3.0 * lift * activity).astype(float)
        sides.append(moments(post, pre))
    plain = stats.welch(*sides)
    theta, mean_x = stats.cuped_theta(sides), stats.pooled_mean_x(sides)
    adjusted = stats.welch(*(stats.cuped_adjust(s, theta, mean_x) for s in sides))
    # Var(y - θx) = Var(y)(1 - ρ²): here ρ² is about a third, so the interval shrinks.
    assert adjusted.se < 0.9 * plain.se
    assert adjusted.relative_effect == pytest.approx(0.1, abs=3 * adjusted.relative_se)


def test_sequential_interval_is_time_uniform() -> None:
    """Peeking at every one of 200 looks: the share of 2,000 null experiments whose always-valid
    interval ever excludes 0 stays below alpha = 0.05 (plus 3.2 binomial sd), whereas the fixed
    95% interval, peeked at the same way, excludes 0 in far more of them."""
    rng = np.random.default_rng(9)
    reps, looks, batch = 2000, 200, 10
    draws = rng.normal(0.0, 1.0, size=(reps, looks, 2, batch))
    counts = batch * np.arange(1, looks + 1)
    sums = np.cumsum(draws.sum(axis=3), axis=1)
    squares = np.cumsum((draws**2).sum(axis=3), axis=1)
    means = sums / counts[None, :, None]
    variances = (squares - counts[None, :, None] * means**2) / (counts[None, :, None] - 1)
    effects = means[:, :, 1] - means[:, :, 0]
    ses = np.sqrt((variances[:, :, 0] + variances[:, :, 1]) / counts[None, :])
    ever_sequential = ever_fixed = 0
    for effect_row, se_row in zip(effects, ses, strict=True):
        rejected_seq = rejected_fixed = False
        for effect, se in zip(effect_row, se_row, strict=True):
            low, high = stats.sequential(float(effect), float(se), tau=0.1).ci
            rejected_seq |= not low <= 0 <= high
            rejected_fixed |= abs(effect / se) > 1.96
        ever_sequential += rejected_seq
        ever_fixed += rejected_fixed
    assert ever_sequential / reps <= 0.05 + 3.2 * math.sqrt(0.05 * 0.95 / reps)
    assert ever_fixed / reps > 0.2


def test_sequential_p_value_and_interval_agree() -> None:
    """The interval excludes 0 exactly when the always-valid p-value is below alpha."""
    for effect in np.linspace(-0.5, 0.5, 41):
        result = stats.sequential(float(effect), 0.1, tau=0.2, alpha=0.05)
        excludes = not result.ci[0] <= 0 <= result.ci[1]
        assert excludes == (result.p_value < 0.05)
