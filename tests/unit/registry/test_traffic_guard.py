"""The guard of started sl-v2 experiments and of layers, through the store on both backends.

Each case says from the contract (DESIGN.md, sl-v2) whether units would move: changed ratios on
a site, a removed group, a moved or shrunk layer range move units and are refused (409); one
factor on all of a site's percents, a new site, a range grown into free space move none.
"""

from __future__ import annotations

from typing import Any

import pytest

from splitlab.errors import ConflictError
from splitlab.registry.store import Registry

from .conftest import FakeClock
from .test_store import snapshot

GROUPS = ["control", "treatment", "extra"]


def v2(name: str, split: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": name, "groups": GROUPS, "algorithm": "sl-v2", "traffic_split": split,
            "user_identifier_type": "mw-user", "start": "2026-11-23T00:00:00Z",
            "end": "2027-02-01T00:00:00Z", **fields}


SPLIT = {"default": {"control": 1, "treatment": 2, "extra": 1},
         "enwiki": {"control": 5, "treatment": 5, "extra": 0}}
LAYER = {"name": "reading", "range": [10_000, 20_000]}


@pytest.fixture(autouse=True)
def layers(registry: Registry) -> None:
    """The layers these experiments name exist as registry records (issue 14)."""
    for name in ("reading", "editing"):
        registry.create("layer", {"name": name}, "alice")


def started(registry: Registry, clock: FakeClock, **fields: Any) -> str:
    record = registry.create("experiment", v2("weighted-guard-exp", SPLIT, **fields), "alice")
    clock.advance(days=2)
    return record.name


def patch(registry: Registry, name: str, change: dict[str, Any]) -> None:
    registry.update("experiment", name, change, registry.get("experiment", name).etag, "bob")


@pytest.mark.parametrize(("split", "message"), [
    ({**SPLIT, "default": {"control": 1, "treatment": 3, "extra": 1}},
     "ratios on sites without their own entry cannot change.*control 1, treatment 2, extra 1 "
     "and would become control 1, treatment 3, extra 1"),
    ({**SPLIT, "enwiki": {"control": 5, "treatment": 5, "extra": 5}},
     "ratios on site 'enwiki' cannot change"),
    ({**SPLIT, "enwiki": {"control": 5}}, "ratios on site 'enwiki' cannot change"),
    ({"default": SPLIT["default"]}, "ratios on site 'enwiki' cannot change"),
    ({**SPLIT, "enwiki": {"control": 0, "treatment": 0}},
     "traffic on site 'enwiki' cannot stop"),
])
def test_changing_ratios_on_a_started_site_is_refused(
        registry: Registry, clock: FakeClock, split: dict[str, Any], message: str) -> None:
    name = started(registry, clock)
    before = snapshot(registry)
    with pytest.raises(ConflictError, match=message):
        patch(registry, name, {"traffic_split": split})
    assert snapshot(registry) == before


def test_removing_a_group_is_refused(registry: Registry, clock: FakeClock) -> None:
    name = started(registry, clock)
    with pytest.raises(ConflictError, match="groups cannot change within a phase"):
        patch(registry, name, {"groups": ["control", "treatment"], "traffic_split": {
            "default": {"control": 1, "treatment": 2}, "enwiki": {"control": 5, "treatment": 5}}})


def test_one_factor_per_site_and_new_sites_are_allowed(
        registry: Registry, clock: FakeClock) -> None:
    name = started(registry, clock)
    raised = {"default": {"control": 2.5, "treatment": 5, "extra": 2.5},
              "enwiki": {"control": 20, "treatment": 20},
              "dewiki": {"control": 3, "treatment": 6, "extra": 3}}
    patch(registry, name, {"traffic_split": raised})
    assert registry.get("experiment", name).row["traffic_split"]["enwiki"] == {
        "control": 20, "treatment": 20}
    patch(registry, name, {"traffic_split": {**raised, "enwiki": {"control": 7.5,
                                                                  "treatment": 7.5}}})
    with pytest.raises(ConflictError, match="ratios on site 'dewiki'"):  # had default's units
        patch(registry, name, {"traffic_split": {**raised, "dewiki": {"control": 1}}})


def test_old_readers_rate_follows_the_split_through_patches(
        registry: Registry, clock: FakeClock) -> None:
    """sample_rate of an sl-v2 row is each site's total, also after a patch of the split and
    when a tk-v1 row (whose own rate the patch keeps) becomes sl-v2."""
    name = started(registry, clock)
    assert registry.get("experiment", name).row["sample_rate"] == {
        "default": 0.04, "0.1": ["enwiki"]}
    patch(registry, name, {"traffic_split": {**SPLIT, "enwiki": {"control": 25,
                                                                 "treatment": 25}}})
    assert registry.get("experiment", name).row["sample_rate"] == {
        "default": 0.04, "0.5": ["enwiki"]}
    patch(registry, name, {"traffic_split": SPLIT, "sample_rate": {"default": 1}})
    assert registry.get("experiment", name).row["sample_rate"] == {
        "default": 0.04, "0.1": ["enwiki"]}
    row = {k: v for k, v in v2("converted-rate-exp", {}).items() if k not in
           ("algorithm", "traffic_split")}
    registry.create("experiment", {**row, "sample_rate": {"default": 0.3}}, "alice")
    patch(registry, row["name"], {"algorithm": "sl-v2", "traffic_split": {
        "default": {"control": 20, "treatment": 20, "extra": 20}}})
    assert registry.get("experiment", row["name"]).row["sample_rate"] == {"default": 0.6}


def test_a_site_without_traffic_may_get_any_split(registry: Registry, clock: FakeClock) -> None:
    record = registry.create("experiment", v2("site-guard-exp", {"enwiki": SPLIT["enwiki"]}),
                             "alice")
    clock.advance(days=2)
    patch(registry, record.name, {"traffic_split": {
        "enwiki": SPLIT["enwiki"], "dewiki": {"control": 1, "treatment": 1, "extra": 7},
        "default": {"extra": 1}}})


def test_a_new_phase_may_change_the_ratios(registry: Registry, clock: FakeClock) -> None:
    name = started(registry, clock)
    patch(registry, name, {"traffic_split": {"default": {"control": 9, "treatment": 1}},
                           "phase_index": 1, "start": "2026-11-26T00:00:00Z"})


def test_ratios_may_change_before_the_start(registry: Registry) -> None:
    record = registry.create("experiment", v2("weighted-guard-exp", SPLIT), "alice")
    patch(registry, record.name, {"traffic_split": {"default": {"control": 9, "treatment": 1}}})


def test_a_started_tk_v1_row_becomes_sl_v2_only_with_equal_groups(
        registry: Registry, clock: FakeClock) -> None:
    row = {k: v for k, v in v2("converted-guard-exp", {}).items() if k not in
           ("algorithm", "traffic_split")}
    registry.create("experiment", {**row, "sample_rate": {"default": 0.3}}, "alice")
    clock.advance(days=2)
    with pytest.raises(ConflictError, match="control 1, treatment 1, extra 1 and would become "
                                            "control 1, treatment 2, extra 1"):
        patch(registry, row["name"], {"algorithm": "sl-v2",
                                      "traffic_split": SPLIT})
    patch(registry, row["name"], {"algorithm": "sl-v2", "traffic_split": {
        "default": {"control": 10, "treatment": 10, "extra": 10}}})


@pytest.mark.parametrize(("layer", "message"), [
    ({"name": "reading", "range": [11_000, 21_000]}, "can only grow"),
    ({"name": "reading", "range": [10_000, 19_999]}, "can only grow"),
    ({"name": "editing", "range": [10_000, 20_000]}, "cannot leave layer 'reading'"),
    (None, "cannot leave layer 'reading'"),
])
def test_moving_or_shrinking_the_layer_range_is_refused(
        registry: Registry, clock: FakeClock, layer: Any, message: str) -> None:
    name = started(registry, clock, layer=LAYER)
    with pytest.raises(ConflictError, match=message):
        patch(registry, name, {"layer": layer})


def test_joining_a_layer_after_the_start_is_refused(registry: Registry, clock: FakeClock) -> None:
    name = started(registry, clock)
    with pytest.raises(ConflictError, match="cannot join a layer"):
        patch(registry, name, {"layer": LAYER})


def test_the_layer_range_grows_into_free_space_only(registry: Registry, clock: FakeClock) -> None:
    name = started(registry, clock, layer=LAYER)
    registry.create("experiment", v2("neighbour-layer-exp", SPLIT,
                                     layer={"name": "reading", "range": [30_000, 40_000]}),
                    "alice")
    patch(registry, name, {"layer": {"name": "reading", "range": [5_000, 30_000]}})
    with pytest.raises(ConflictError, match=r"overlaps \[30000, 40000\) of experiment "
                                            r"'neighbour-layer-exp'"):
        patch(registry, name, {"layer": {"name": "reading", "range": [5_000, 30_001]}})


def test_overlapping_ranges_of_one_layer_are_refused_while_both_run(
        registry: Registry, clock: FakeClock) -> None:
    started(registry, clock, layer=LAYER)
    before = snapshot(registry)
    with pytest.raises(ConflictError, match=r"layer 'reading'.*overlaps \[10000, 20000\)"):
        registry.create("experiment", v2("overlapping-layer-exp", SPLIT, layer={
            "name": "reading", "range": [19_999, 30_000]}, start="2027-01-31T00:00:00Z",
            end="2027-03-01T00:00:00Z"), "alice")
    assert snapshot(registry) == before
    # after the other one ends, or in another layer, or beside it: allowed
    registry.create("experiment", v2("later-layer-exp", SPLIT, layer=LAYER,
                                     start="2027-02-02T00:00:00Z", end="2027-03-01T00:00:00Z"),
                    "alice")
    registry.create("experiment", v2("other-layer-exp", SPLIT,
                                     layer={"name": "editing", "range": [0, 100_000]}), "alice")
    registry.create("experiment", v2("beside-layer-exp", SPLIT,
                                     layer={"name": "reading", "range": [20_000, 30_000]}),
                    "alice")
