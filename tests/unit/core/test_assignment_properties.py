"""Properties tk-v1 guarantees, checked with hypothesis and chi-square tests (scipy as oracle).

Statistical checks use alpha = 0.001 on fixed identifier sets: assignment is deterministic, so
each check either always passes or always fails; a pass means the split is indistinguishable
from the configured one at that level.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from conftest import unavailable
from splitlab import Experiment, assign
from splitlab.core.assignment import (
    ACCELERATED,
    accelerated_assign,
    accelerated_assign_batch,
    assign_batch,
    pure_assign,
    pure_assign_batch,
)

ALPHA = 0.001
identifiers = st.one_of(st.integers(min_value=0, max_value=2**63), st.text(max_size=40))
names = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() != "")
rates = st.floats(min_value=0, max_value=1, allow_nan=False)
group_counts = st.integers(min_value=1, max_value=6)


def experiment(name: str, count: int, rate: float) -> Experiment:
    return Experiment.from_config(
        {
            "name": name,
            "groups": [f"g{i}" for i in range(count)],
            "sample_rate": {"default": rate},
            "user_identifier_type": "edge-unique",
        }
    )


@given(identifiers, names, group_counts, rates)
def test_assignment_is_deterministic_and_consistent_with_the_batch(
    identifier: int | str, name: str, count: int, rate: float
) -> None:
    exp = experiment(name, count, rate)
    first = pure_assign(identifier, exp)
    assert pure_assign(identifier, exp) == first
    assert pure_assign_batch([identifier], exp)[0] == first
    if ACCELERATED:
        assert accelerated_assign(identifier, exp) == first
        assert accelerated_assign_batch([identifier], exp)[0] == first
    assert first.in_sample == (first.group is not None)


@given(identifiers, names, group_counts, rates, rates)
def test_raising_the_rate_only_adds_units_and_never_moves_one(
    identifier: int | str, name: str, count: int, low: float, high: float
) -> None:
    low, high = min(low, high), max(low, high)
    before = assign(identifier, experiment(name, count, low))
    after = assign(identifier, experiment(name, count, high))
    if before.in_sample:
        assert after.in_sample
        assert after.group == before.group
    assert before.subject_id == after.subject_id


@given(identifiers, names, names)
def test_the_subject_id_is_salted_by_the_experiment_name(
    identifier: int | str, first: str, second: str
) -> None:
    a = assign(identifier, experiment(first, 2, 1)).subject_id
    b = assign(identifier, experiment(second, 2, 1)).subject_id
    assert (a == b) == (first == second)


@pytest.mark.parametrize(("count", "rate"), [(1, 0.3), (2, 0.5), (3, 0.1), (5, 1.0), (4, 0.02)])
def test_sample_share_matches_the_rate_and_groups_are_equal(count: int, rate: float) -> None:
    n = 200_000
    exp = experiment("share-check-experiment", count, rate)
    result = assign_batch(range(n), exp)
    sampled = sum(g is not None for g in result.groups)
    # The in-sample count is binomial(n, rate): a two-sided exact binomial test.
    if 0 < rate < 1:
        assert stats.binomtest(sampled, n, rate).pvalue > ALPHA
    else:
        assert sampled == n
    observed = [result.groups.count(g) for g in exp.groups]
    if count > 1:
        assert stats.chisquare(observed).pvalue > ALPHA


def test_a_zero_rate_enrolls_nobody() -> None:
    result = assign_batch(range(50_000), experiment("zero-rate-experiment", 3, 0.0))
    assert set(result.groups) == {None}


def test_different_experiments_assign_independently() -> None:
    n = 120_000
    first = assign_batch(range(n), experiment("independence-a-2026", 3, 1)).groups
    second = assign_batch(range(n), experiment("independence-b-2026", 2, 1)).groups
    table = [[0, 0] for _ in range(3)]
    for a, b in zip(first, second, strict=True):
        table[int(str(a)[1:])][int(str(b)[1:])] += 1
    assert stats.chi2_contingency(table).pvalue > ALPHA


def test_per_site_rates_apply_only_to_listed_sites() -> None:
    exp = Experiment.from_config(
        {
            "name": "per-site-check",
            "groups": ["control", "treatment"],
            "sample_rate": {"default": 0.0, "1": ["enwiki"]},
            "user_identifier_type": "mw-user",
        }
    )
    assert all(assign(i, exp, site="enwiki").in_sample for i in range(200))
    assert not any(assign(i, exp, site="dewiki").in_sample for i in range(200))
    assert not any(assign(i, exp).in_sample for i in range(200))


@settings(max_examples=50)
@given(st.lists(identifiers, max_size=30), names, group_counts, rates)
def test_batches_of_mixed_identifier_types_match_single_calls(
    ids: list[int | str], name: str, count: int, rate: float
) -> None:
    exp = experiment(name, count, rate)
    expected = [pure_assign(i, exp) for i in ids]
    assert list(pure_assign_batch(ids, exp)) == expected
    if ACCELERATED:
        assert list(accelerated_assign_batch(ids, exp)) == expected


@pytest.mark.parametrize("bad", [1.5, None, True, b"bytes", ["x"]])
def test_identifiers_other_than_int_or_str_are_misuse(bad: object) -> None:
    exp = experiment("misuse-check", 2, 1)
    for single in (pure_assign, accelerated_assign) if ACCELERATED else (pure_assign,):
        with pytest.raises(TypeError, match="int or a str"):
            single(bad, exp)  # type: ignore[arg-type]
    for batch in (pure_assign_batch, accelerated_assign_batch) if ACCELERATED else (
        pure_assign_batch,
    ):
        with pytest.raises(TypeError, match="int or a str"):
            batch([1, bad], exp)  # type: ignore[list-item]


def test_int_subclasses_hash_as_their_decimal_value() -> None:
    import enum

    class Level(enum.IntEnum):
        HIGH = 7

    exp = experiment("int-subclass-check", 2, 1)
    assert pure_assign(Level.HIGH, exp) == pure_assign(7, exp)
    if ACCELERATED:
        assert accelerated_assign(Level.HIGH, exp) == pure_assign(7, exp)
        assert list(accelerated_assign_batch([Level.HIGH, 7], exp)) == [
            pure_assign(7, exp)
        ] * 2


def test_long_identifiers_span_several_hash_blocks() -> None:
    exp = experiment("long-identifier-check", 3, 0.7)
    for size in (0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 10_000):
        identifier = "ü" * size
        expected = pure_assign(identifier, exp)
        assert expected.subject_id == hashlib.sha256(
            (identifier + "long-identifier-check").encode()
        ).hexdigest()
        if ACCELERATED:
            assert accelerated_assign(identifier, exp) == expected


def test_subject_ids_hash_the_utf8_bytes_of_the_identifier() -> None:
    exp = experiment("utf8-check", 2, 1)
    expected = hashlib.sha256("Ünïcödé".encode() + b"utf8-check").hexdigest()
    assert assign("Ünïcödé", exp).subject_id == expected


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_the_accelerators_portable_sha256_matches_hashlib(data: bytes) -> None:
    if not ACCELERATED:
        unavailable("the C accelerator splitlab.core._tkv1 is not built")
    from splitlab.core import _tkv1  # type: ignore[attr-defined]

    assert _tkv1.sha256_builtin(data) == hashlib.sha256(data).digest()
