"""assign_many: the same answers as assign, in order, whatever the workers."""

from __future__ import annotations

import pytest

from splitlab import Experiment, assign
from splitlab.bulk import assign_many

EXP = Experiment.from_config(
    {"name": "bulk-check-2026", "groups": ["control", "b", "c"],
     "sample_rate": {"default": 0.4, "0.9": ["enwiki"]}, "user_identifier_type": "mw-user"}
)
IDS: list[int | str] = [*range(20_000), *(f"anon-{i}-ü" for i in range(5_000))]


@pytest.mark.parametrize("pool", ["threads", "processes"])
@pytest.mark.parametrize("site", [None, "enwiki"])
def test_parallel_workers_give_the_same_answers_in_order(pool: str, site: str | None) -> None:
    seen: list[int] = []
    result = assign_many(
        IDS, EXP, site, workers=2, chunk_size=3_000, progress=seen.append,
        pool=pool,  # type: ignore[arg-type]
    )
    assert sum(seen) == len(IDS) and len(seen) == 9
    assert len(result) == len(IDS)
    for index in range(0, len(IDS), 113):
        assert result[index] == assign(IDS[index], EXP, site)
    assert result.groups == [assign(i, EXP, site).group for i in IDS]


def test_an_empty_input_gives_an_empty_result() -> None:
    result = assign_many([], EXP)
    assert len(result) == 0 and result.groups == [] and result.subject_ids == []


def test_a_generator_is_accepted_and_slices_are_sequences() -> None:
    result = assign_many((i for i in range(10)), EXP)
    assert list(result[2:5]) == [assign(i, EXP) for i in range(2, 5)]
    assert result[-1] == assign(9, EXP)


def test_a_bad_identifier_in_a_worker_raises_type_error() -> None:
    with pytest.raises(TypeError, match="int or a str"):
        assign_many([*range(10), 1.5], EXP, workers=2, chunk_size=4)  # type: ignore[list-item]
