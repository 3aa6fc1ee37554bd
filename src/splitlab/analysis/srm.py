"""Sample ratio mismatch against the split the experiment configures on each unit's site.

The configured split comes from the experiment row (:class:`ConfiguredSplit.of`): equal groups
everywhere for ``tk-v1``; for ``sl-v2`` each site's ``traffic_split`` entry (else its
``default``). Within a site the enrolled units are expected in proportion to the site's weights
(holdouts, layers and targeting hash or test independently of the slot, so they do not change
that proportion), hence a group's expected count is ``E_g = Σ_site n_site · w_site,g / Σ w_site``
over the sites its units were counted on. Pearson's ``X² = Σ (O_g − E_g)² / E_g`` on ``k − 1``
degrees of freedom (``k`` groups with ``E_g > 0``). Units counted where their site gives their
group no share (a 0 % group, a site without an entry and no ``default``, a group not configured)
are a mismatch by themselves. The analysis (:func:`splitlab.analysis.analyze.analyze`) and the
results scheduler's health check both get their numbers from :func:`sample_ratio_mismatch`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from splitlab.analysis import stats
from splitlab.core.model import Experiment

DEFAULT_SITE = "default"
NO_SITE = "(none)"
"""The site key of units whose events name no site (``queries.counts("site")``)."""


@dataclass(frozen=True, slots=True)
class ConfiguredSplit:
    """The configured weight of each group (in ``groups`` order) per site; the key
    ``default`` serves sites without their own entry. A site with neither gets no units."""

    groups: tuple[str, ...]
    sites: Mapping[str, tuple[float, ...]]

    @classmethod
    def of(cls, experiment: Experiment) -> ConfiguredSplit:
        """The split ``experiment`` assigns by: ``sl-v2`` traffic split, else equal groups."""
        if experiment.slv2 is None:
            return cls.equal(experiment.groups)
        return cls(experiment.groups, {
            site: tuple(float(w) for w in split.weights)
            for site, split in experiment.slv2.splits.items()})

    @classmethod
    def equal(cls, groups: Sequence[str]) -> ConfiguredSplit:
        """Equal groups on every site (``tk-v1``)."""
        return cls(tuple(groups), {DEFAULT_SITE: (1.0,) * len(groups)})

    def weights_on(self, site: str | None, groups: Sequence[str]) -> list[float]:
        """The weights of ``groups`` on ``site`` (0 for a group not configured, all 0 on a
        site without an entry when there is no ``default``)."""
        by_group = dict(zip(self.groups, self.site_weights(site), strict=True))
        return [by_group.get(group, 0.0) for group in groups]

    def site_weights(self, site: str | None) -> tuple[float, ...]:
        """The weights in force on ``site`` (its own entry, else ``default``, else zeros)."""
        if site is not None and site in self.sites:
            return self.sites[site]
        return self.sites.get(DEFAULT_SITE, (0.0,) * len(self.groups))


@dataclass(frozen=True, slots=True)
class Srm:
    """The sample ratio mismatch test over unmixed units. Units where their site's configured
    share is 0 are a mismatch by themselves (``statistic`` infinite, ``p_value`` 0). When there
    is no ratio to test (one group known, or one positive share with every unit in it)
    ``statistic`` and ``p_value`` are ``None`` and ``note`` says why."""

    statistic: float | None
    df: int
    p_value: float | None
    alpha: float
    flagged: bool
    observed: dict[str, float]
    expected: dict[str, float]
    observed_units: dict[str, int]
    expected_units: dict[str, float]
    note: str | None = None


def expected_units(groups: Sequence[str], by_site: Mapping[str, Mapping[str, int]],
                   split: ConfiguredSplit) -> tuple[dict[str, float], int]:
    """``E_g`` per group, and the number of units counted where their group has no share."""
    expected = dict.fromkeys(groups, 0.0)
    stray = 0
    for site, counts in by_site.items():
        weights = split.weights_on(None if site == NO_SITE else site, groups)
        stray += sum(counts.get(g, 0) for g, w in zip(groups, weights, strict=True) if w <= 0)
        weight_sum, units = sum(weights), sum(counts.values())
        if weight_sum > 0:
            for group, weight in zip(groups, weights, strict=True):
                expected[group] += units * weight / weight_sum
    return expected, stray


def sample_ratio_mismatch(groups: Sequence[str], by_site: Mapping[str, Mapping[str, int]],
                          split: ConfiguredSplit, alpha: float,
                          configured: Sequence[str] = ()) -> Srm:
    """The test of the unmixed units per site and group (``by_site``; every group it names is
    in ``groups``) against ``split``. ``configured`` are the groups the experiment configures
    (empty when the analysis was given no config: the note then says so)."""
    observed = {g: sum(counts.get(g, 0) for counts in by_site.values()) for g in groups}
    total = sum(observed.values())
    expected, stray = expected_units(groups, by_site, split)
    if total:
        shares = {g: expected[g] / total for g in groups}
    else:
        default = split.weights_on(None, groups)
        shares = {g: w / (sum(default) or 1.0) for g, w in zip(groups, default, strict=True)}
    numbers = ({g: (observed[g] / total if total else 0.0) for g in groups}, shares, observed,
               expected)
    if stray:  # units where none may be: X² is infinite whatever the other counts are
        return Srm(math.inf, len(groups) - 1, 0.0, alpha, True, *numbers)
    if not total:
        return Srm(None, 0, None, alpha, False, *numbers,
                   note="every unit was seen in several groups: no unit to test")
    positive = [g for g in groups if expected[g] > 0]
    if len(positive) < 2:
        return Srm(None, 0, None, alpha, False, *numbers,
                   note=_untestable(configured, positive[0]))
    test = stats.chi_square_gof([observed[g] for g in positive], [expected[g] for g in positive])
    return Srm(test.statistic, test.df, test.p_value, alpha, test.p_value < alpha, *numbers)


def _untestable(configured: Sequence[str], only: str) -> str:
    """Why there is no ratio to test when every unit is in ``only``, the one group with a share."""
    if not configured:
        return (f"only one group seen in the data ({only!r}); give --config to name every "
                "configured group")
    if len(configured) == 1:
        return f"the experiment has one group ({only!r}): there is no ratio to test"
    return (f"only {only!r} has a positive configured share and every unit is in it: "
            "there is no ratio to test")
