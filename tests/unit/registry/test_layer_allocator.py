"""Property tests of "N bins of layer L": the pure range arithmetic against a bin-by-bin oracle,
and the registry (SQLite) under random sequences of create-with-bins, grow and end, where the
running experiments of a layer never hold overlapping ranges and a request is refused only when
no free range of that size exists (computed here from the running ranges, not by the code)."""

from __future__ import annotations

import itertools
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitlab.errors import ConflictError
from splitlab.registry import layers
from splitlab.registry.store import Record, Registry

from .conftest import FakeClock

SMALL = 60


@st.composite
def occupied(draw: st.DrawFn) -> list[tuple[int, int]]:
    """Disjoint ranges of ``[0, SMALL)``, in any order."""
    cuts = sorted(draw(st.lists(st.integers(0, SMALL), max_size=8)))
    pairs = [(low, high) for low, high in zip(cuts[::2], cuts[1::2], strict=False) if low < high]
    return draw(st.permutations(pairs))


def bitmap(held: list[tuple[int, int]]) -> list[bool]:
    used = [False] * SMALL
    for low, high in held:
        for b in range(low, high):
            used[b] = True
    return used


@given(occupied())
def test_free_ranges_are_exactly_the_unused_bins(held: list[tuple[int, int]]) -> None:
    free = layers.free_ranges(held, SMALL)
    used = bitmap(held)
    assert sorted(b for low, high in free for b in range(low, high)) == [
        b for b in range(SMALL) if not used[b]]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(free))  # maximal, ordered


@given(occupied(), st.integers(1, SMALL))
def test_first_fit_is_the_lowest_free_run(held: list[tuple[int, int]], size: int) -> None:
    used = bitmap(held)
    starts = [s for s in range(SMALL - size + 1) if not any(used[s:s + size])]
    fit = layers.first_fit(layers.free_ranges(held, SMALL), size)
    if not starts:
        assert fit is None
        return
    # the lowest start that begins a free run (first fit takes the start of a free range)
    runs = [s for s in starts if s == 0 or used[s - 1]]
    assert fit == (runs[0], runs[0] + size)


@given(occupied(), st.integers(0, SMALL - 1), st.integers(1, SMALL), st.integers(1, SMALL))
def test_growing_in_place_keeps_the_range_and_uses_free_bins_only(
        held: list[tuple[int, int]], low: int, width: int, size: int) -> None:
    own = (low, min(SMALL, low + width))
    others = [r for r in held if r[1] <= own[0] or own[1] <= r[0]]
    grown = layers.grow_in_place(own, layers.free_ranges([*others, own], SMALL), size)
    used = bitmap(others)
    left, right = own[0], own[1]
    while left > 0 and not used[left - 1]:
        left -= 1
    while right < SMALL and not used[right]:
        right += 1
    if size > right - left:
        assert grown is None
        return
    assert grown is not None
    assert grown[0] <= own[0] and own[1] <= grown[1]
    assert grown[1] - grown[0] == max(size, own[1] - own[0])
    assert not any(used[grown[0]:grown[1]])


def largest_gap(ranges: list[list[int]]) -> int:
    cursor, best = 0, 0
    for low, high in sorted(ranges):
        best = max(best, low - cursor)
        cursor = max(cursor, high)
    return max(best, 100_000 - cursor)


def room(own: list[int], others: list[list[int]]) -> int:
    left = max([high for _, high in others if high <= own[0]], default=0)
    right = min([low for low, _ in others if low >= own[1]], default=100_000)
    return right - left


OPS = st.lists(st.tuples(st.sampled_from(["create", "grow", "end"]), st.integers(0, 20),
                         st.integers(1, 60_000)), min_size=1, max_size=12)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Registry, FakeClock]]:
    """One SQLite registry for every example (each example works in a layer of its own)."""
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as folder:
        registry = Registry.open(None, Path(folder), clock=clock)
        yield registry, clock
        registry.close()


@settings(max_examples=40)
@given(ops=OPS)
def test_running_experiments_of_a_layer_never_overlap(
        shared: tuple[Registry, FakeClock], ops: list[tuple[str, int, int]]) -> None:
    registry, clock = shared
    layer = f"prop-{uuid.uuid4().hex[:12]}"
    registry.create("layer", {"name": layer}, "al")

    def mine() -> list[Record]:
        return [r for r in registry.records("experiment") if r.row["layer"]["name"] == layer]

    for op, pick, bins in ops:
        clock.advance(minutes=1)
        running = {r.name: r for r in mine() if r.row["end"] >= "9999"}
        if op == "create":
            row = {"name": f"{layer}-{uuid.uuid4().hex[:6]}", "groups": ["a", "b"],
                   "algorithm": "sl-v2", "traffic_split": {"default": {"a": 1, "b": 1}},
                   "user_identifier_type": "mw-user", "layer": {"name": layer, "bins": bins}}
            try:
                stored = registry.create("experiment", row, "al").row["layer"]["range"]
            except ConflictError:
                assert largest_gap([r.row["layer"]["range"] for r in running.values()]) < bins
                continue
            assert stored[1] - stored[0] == bins
        elif running:
            record = running[sorted(running)[pick % len(running)]]
            if op == "end":
                registry.end("experiment", record.name, None, "al")
                continue
            own = record.row["layer"]["range"]
            size = min(100_000, own[1] - own[0] + bins)
            try:
                grown = registry.update("experiment", record.name, {"layer": {
                    "name": layer, "bins": size}}, record.etag, "al").row["layer"]["range"]
            except ConflictError:
                # bins of experiments that ran at the same time as this one are not free to it
                others = [r.row["layer"]["range"] for r in mine()
                          if r.name != record.name and r.row["end"] >= record.row["start"]]
                assert room(own, others) < size
                continue
            assert grown[0] <= own[0] and own[1] <= grown[1]
            assert grown[1] - grown[0] == size
        ranges = sorted(r.row["layer"]["range"] for r in mine() if r.row["end"] >= "9999")
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
