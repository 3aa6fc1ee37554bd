"""Properties sl-v2 guarantees, checked with hypothesis and chi-square tests (scipy as oracle).

Statistical checks use alpha = 0.001 on fixed identifier sets: assignment is deterministic, so
each check either always passes or always fails; a pass means the split is indistinguishable
from the configured weights at that level.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from splitlab import Experiment
from splitlab.core.assignment import (
    ACCELERATED,
    accelerated_assign,
    assign,
    assign_batch,
    pure_assign,
)
from splitlab.core.resolution import Reason, resolve

ALPHA = 0.001
identifiers = st.one_of(st.integers(min_value=0, max_value=2**63), st.text(max_size=40))
names = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() != "")


@st.composite
def weights(draw: st.DrawFn) -> list[int]:
    """Weights in thousandths of a percent for up to 4 groups: small shares times a unit, at
    most 25 % in total so that raising them by up to 4 stays within 100 %."""
    shares = draw(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=4))
    unit = draw(st.integers(min_value=1, max_value=25_000 // max(1, sum(shares))))
    return [share * unit for share in shares]



def experiment(name: str, thousandths: list[int], **gates: Any) -> Experiment:
    groups = [f"g{i}" for i in range(len(thousandths))]
    split = {g: w / 1000 for g, w in zip(groups, thousandths, strict=True)}
    return Experiment.from_config({"name": name, "groups": groups, "algorithm": "sl-v2",
                                   "traffic_split": {"default": split},
                                   "user_identifier_type": "edge-unique", **gates})


def scaled(thousandths: list[int], factor: int) -> list[int]:
    return [w * factor for w in thousandths]


@settings(deadline=None)
@given(identifiers, names, weights(), st.integers(min_value=1, max_value=4))
def test_raising_traffic_by_a_factor_only_adds_units_and_never_moves_one(
    identifier: int | str, name: str, thousandths: list[int], factor: int
) -> None:
    before = assign(identifier, experiment(name, thousandths))
    after = assign(identifier, experiment(name, scaled(thousandths, factor)))
    if before.in_sample:
        assert after.group == before.group
    assert before.subject_id == after.subject_id


@settings(deadline=None)
@given(identifiers, names, weights())
def test_both_implementations_agree_and_0_percent_groups_get_nobody(
    identifier: int | str, name: str, thousandths: list[int]
) -> None:
    exp = experiment(name, thousandths)
    result = pure_assign(identifier, exp)
    if ACCELERATED:
        assert accelerated_assign(identifier, exp) == result
    if result.group is not None:
        assert thousandths[int(result.group[1:])] > 0


@pytest.mark.parametrize("thousandths", [[10_000, 90_000], [5_000, 10_000, 15_000],
                                         [20_000, 0, 20_000], [125, 375], [1, 9_999]])
def test_group_shares_match_the_weights(thousandths: list[int]) -> None:
    n = 200_000
    exp = experiment("weighted-share-check", thousandths)
    groups = assign_batch(range(n), exp).groups
    total = sum(thousandths)
    sampled = sum(g is not None for g in groups)
    assert stats.binomtest(sampled, n, total / 100_000).pvalue > ALPHA
    observed = [groups.count(g) for g in exp.groups]
    positive = [(o, w) for o, w in zip(observed, thousandths, strict=True) if w > 0]
    assert all(o == 0 for o, w in zip(observed, thousandths, strict=True) if w == 0)
    expected = [sampled * w / total for _, w in positive]
    assert stats.chisquare([o for o, _ in positive], expected).pvalue > ALPHA


@settings(max_examples=50, deadline=None)
@given(names, st.integers(min_value=1, max_value=99_999))
def test_experiments_on_both_sides_of_a_layer_split_never_share_a_unit(
    layer: str, cut: int
) -> None:
    full = [50_000, 50_000]
    left = experiment("layer-left-check", full, layer={"name": layer, "range": [0, cut]})
    right = experiment("layer-right-check", full, layer={"name": layer, "range": [cut, 100_000]})
    for identifier in range(300):
        in_left = resolve(identifier, left).reason is not Reason.LAYER
        in_right = resolve(identifier, right).reason is not Reason.LAYER
        assert in_left != in_right


@settings(max_examples=50, deadline=None)
@given(names, st.integers(min_value=0, max_value=100_000))
def test_held_out_units_are_never_enrolled(holdout: str, weight: int) -> None:
    exp = experiment("holdout-check", [50_000, 50_000],
                     holdouts=[{"name": holdout, "percent": weight / 1000}])
    results = [resolve(i, exp) for i in range(300)]
    held = [r for r in results if r.reason is Reason.HOLDOUT]
    assert all(r.group is None for r in held)
    assert all(r.reason is Reason.ASSIGNED for r in results if r.reason is not Reason.HOLDOUT)
    batch = assign_batch(range(300), exp).groups
    assert [g is None for g in batch] == [r.reason is Reason.HOLDOUT for r in results]


def test_the_holdout_share_matches_its_percent() -> None:
    n = 100_000
    exp = experiment("holdout-share-check", [50_000, 50_000],
                     holdouts=[{"name": "global-2026", "percent": 7.5}])
    held = sum(g is None for g in assign_batch(range(n), exp).groups)
    assert stats.binomtest(held, n, 0.075).pvalue > ALPHA
