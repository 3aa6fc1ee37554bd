"""Layers and holdouts as registry records (issue 14), on SQLite and PostgreSQL: their rows and
history, the references experiments make to them, "N bins of layer L", and the 409s that keep
units where they are. Expected ranges and percents are worked out here by hand."""

from __future__ import annotations

from typing import Any

import pytest

from splitlab.errors import ConfigError, ConflictError
from splitlab.registry.store import Registry

from .conftest import FakeClock

SPLIT = {"default": {"control": 10, "treatment": 10}}
# The clock starts at 2026-11-22T12:00Z; "running" rows started the day before.
RUNNING = {"start": "2026-11-21T00:00:00Z", "end": "2027-02-01T00:00:00Z"}
SCHEDULED = {"start": "2026-12-01T00:00:00Z", "end": "2027-02-01T00:00:00Z"}


def v2(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "groups": ["control", "treatment"], "algorithm": "sl-v2",
            "traffic_split": SPLIT, "user_identifier_type": "mw-user", **RUNNING, **fields}


def patch(registry: Registry, kind: str, name: str, change: dict[str, Any]) -> dict[str, Any]:
    record = registry.update(kind, name, change, registry.get(kind, name).etag, "bob")
    return record.row


def everything(registry: Registry) -> Any:
    kinds = ("experiment", "layer", "holdout")
    return ([(r.kind, r.name, r.revision, r.row) for k in kinds for r in registry.records(k)],
            registry.change_counter())


def test_layer_and_holdout_records_have_rows_history_and_etags(registry: Registry) -> None:
    layer = registry.create("layer", {"name": "reading", "description": "article pages"}, "al")
    holdout = registry.create("holdout", {"name": "global-2026", "percent": 2.5}, "al")
    assert layer.row == {"name": "reading", "description": "article pages", "version": 1}
    assert holdout.row == {"name": "global-2026", "percent": 2.5, "version": 1}
    assert layer.etag != holdout.etag and layer.etag.startswith('"')
    patch(registry, "layer", "reading", {"description": "reading surfaces"})
    [created, changed] = registry.history("layer", "reading")
    assert (created.action, created.actor, changed.action, changed.actor) == (
        "create", "al", "update", "bob")
    assert changed.changes == {"description": ["article pages", "reading surfaces"]}
    with pytest.raises(ConflictError, match="already exists"):
        registry.create("layer", {"name": "reading"}, "al")


@pytest.mark.parametrize(("kind", "row", "field", "reason"), [
    ("layer", {"name": "reading", "bins": 1000}, "bins", "always has 100000 bins"),
    ("layer", {"name": "has space"}, "name", "invalid name"),
    ("layer", {"name": "reading", "colour": "blue"}, "colour", "not a known layer field"),
    ("holdout", {"name": "hold"}, "percent", "is required"),
    ("holdout", {"name": "hold", "percent": 0}, "percent", "more than 0"),
    ("holdout", {"name": "hold", "percent": 100.5}, "percent", r"in \[0, 100\]"),
    ("holdout", {"name": "hold", "percent": 1.2345}, "percent", "more than 3 decimals"),
    ("holdout", {"name": "hold", "percent": "5"}, "percent", "must be a percent"),
    ("holdout", {"name": "hold", "percent": 5, "end": "soon"}, "end", "not an ISO 8601"),
])
def test_invalid_layer_and_holdout_rows_name_the_field(
        registry: Registry, kind: str, row: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        registry.create(kind, row, "al")
    assert caught.value.field == field
    assert registry.records(kind) == []


def test_a_holdout_of_100_percent_with_3_decimals_is_kept_exactly(registry: Registry) -> None:
    assert registry.create("holdout", {"name": "all", "percent": 100}, "al").row["percent"] == 100
    assert registry.create("holdout", {"name": "tiny", "percent": 0.001},
                           "al").row["percent"] == 0.001


def test_experiments_must_name_existing_layers_and_holdouts(registry: Registry) -> None:
    before = everything(registry)
    with pytest.raises(ConfigError, match="names no layer 'reading'; create it first: POST "
                                          "/api/v1/layers") as caught:
        registry.create("experiment", v2("layered-exp-1", layer={
            "name": "reading", "range": [0, 10]}), "al")
    assert caught.value.field == "layer.name"
    with pytest.raises(ConfigError, match=r"names no holdout 'global-2026'.*splitlab holdouts "
                                          r"create global-2026 --percent P") as caught:
        registry.create("experiment", v2("held-exp-1", holdouts=[{"name": "global-2026"}]),
                        "al")
    assert caught.value.field == "holdouts[0].name"
    assert everything(registry) == before


def test_a_holdout_entry_takes_the_holdouts_percent(registry: Registry) -> None:
    registry.create("holdout", {"name": "global-2026", "percent": 2.5}, "al")
    registry.create("holdout", {"name": "editors", "percent": 10}, "al")
    row = registry.create("experiment", v2("held-exp-1", holdouts=[
        {"name": "global-2026"}, {"name": "editors", "percent": 10.0}]), "al").row
    assert row["holdouts"] == [{"name": "global-2026", "percent": 2.5},
                               {"name": "editors", "percent": 10}]
    with pytest.raises(ConfigError, match=r"is 3 but holdout 'global-2026' holds 2\.5 percent") \
            as caught:
        registry.create("experiment", v2("held-exp-2", holdouts=[
            {"name": "global-2026", "percent": 3}]), "al")
    assert caught.value.field == "holdouts[0].percent"


def test_a_holdouts_percent_is_locked_while_a_started_experiment_lists_it(
        registry: Registry, clock: FakeClock) -> None:
    registry.create("holdout", {"name": "global-2026", "percent": 2}, "al")
    registry.create("experiment", v2("held-running-exp", holdouts=[{"name": "global-2026"}]),
                    "al")
    before = everything(registry)
    with pytest.raises(ConflictError, match=r"percent cannot change while started experiments "
                                            r"list it.*held-running-exp"):
        patch(registry, "holdout", "global-2026", {"percent": 3})
    assert everything(registry) == before
    patch(registry, "holdout", "global-2026", {"description": "the yearly holdout"})
    clock.advance(days=90)  # the experiment has ended: the holdout may change
    assert patch(registry, "holdout", "global-2026", {"percent": 3})["percent"] == 3
    assert registry.get("experiment", "held-running-exp").row["holdouts"] == [
        {"name": "global-2026", "percent": 2}]  # what it ran with


def test_scheduled_experiments_follow_a_holdouts_new_percent(registry: Registry) -> None:
    registry.create("holdout", {"name": "global-2026", "percent": 2}, "al")
    registry.create("experiment", v2("held-later-exp", holdouts=[{"name": "global-2026"}],
                                     **SCHEDULED), "al")
    patch(registry, "holdout", "global-2026", {"percent": 4.5})
    record = registry.get("experiment", "held-later-exp")
    assert record.revision == 2
    assert record.row["holdouts"] == [{"name": "global-2026", "percent": 4.5}]
    [_, followed] = registry.history("experiment", "held-later-exp")
    assert (followed.actor, followed.action) == ("bob", "update")
    assert followed.changes == {"holdouts": [[{"name": "global-2026", "percent": 2}],
                                             [{"name": "global-2026", "percent": 4.5}]]}


def test_an_experiment_row_cannot_give_a_holdout_another_percent(
        registry: Registry) -> None:
    registry.create("holdout", {"name": "global-2026", "percent": 2}, "al")
    registry.create("experiment", v2("held-running-exp", holdouts=[{"name": "global-2026"}]),
                    "al")
    with pytest.raises(ConfigError, match="holds 2 percent"):
        patch(registry, "experiment", "held-running-exp",
              {"holdouts": [{"name": "global-2026", "percent": 5}]})


@pytest.mark.parametrize("kind", ["layer", "holdout"])
def test_ending_a_layer_or_holdout_in_use_is_refused(
        registry: Registry, clock: FakeClock, kind: str) -> None:
    registry.create("layer", {"name": "reading"}, "al")
    registry.create("holdout", {"name": "reading", "percent": 1}, "al")

    def uses(low: int) -> dict[str, Any]:
        return ({"layer": {"name": "reading", "range": [low, low + 10_000]}} if kind == "layer"
                else {"holdouts": [{"name": "reading"}]})

    registry.create("experiment", v2("running-user-exp", **uses(0)), "al")
    registry.create("experiment", v2("later-user-exp", **uses(50_000), **SCHEDULED), "al")
    before = everything(registry)
    with pytest.raises(ConflictError, match=f"{kind} 'reading' cannot end at "
                                            "2026-11-22T12:00:00Z.*running-user-exp \\(running"):
        registry.end(kind, "reading", None, "bob")
    assert everything(registry) == before
    registry.end("experiment", "running-user-exp", None, "bob")
    clock.advance(minutes=1)
    with pytest.raises(ConflictError, match="later-user-exp \\(scheduled"):
        registry.end(kind, "reading", None, "bob")
    patch(registry, "experiment", "later-user-exp", {"layer": None, "holdouts": None})
    ended = registry.end(kind, "reading", None, "bob")
    assert ended.row["end"] == "2026-11-22T12:01:00Z" and ended.ended_at is not None
    with pytest.raises(ConflictError, match=f"{kind} 'reading' ends at 2026-11-22T12:01:00Z"):
        registry.create("experiment", v2("new-user-exp", **uses(0), **SCHEDULED), "al")
    # an experiment that ended by then may still name it (an import of old rows)
    registry.create("experiment", v2("old-user-exp", **uses(0), start="2026-01-01T00:00:00Z",
                                     end="2026-02-01T00:00:00Z"), "al")


def test_layers_and_holdouts_are_never_renamed(registry: Registry) -> None:
    registry.create("layer", {"name": "reading"}, "al")
    with pytest.raises(ConflictError, match="cannot be renamed"):
        patch(registry, "layer", "reading", {"name": "reading-2"})


def test_bins_take_the_first_free_range(registry: Registry) -> None:
    registry.create("layer", {"name": "reading"}, "al")
    first = registry.create("experiment", v2("binned-exp-1", layer={
        "name": "reading", "bins": 30_000}), "al")
    assert first.row["layer"] == {"name": "reading", "range": [0, 30_000]}
    registry.create("experiment", v2("ranged-exp-2", layer={
        "name": "reading", "range": [40_000, 90_000]}), "al")
    third = registry.create("experiment", v2("binned-exp-3", layer={
        "name": "reading", "bins": 10_000}), "al")
    assert third.row["layer"]["range"] == [30_000, 40_000]
    fourth = registry.create("experiment", v2("binned-exp-4", layer={
        "name": "reading", "bins": 10_000}), "al")
    assert fourth.row["layer"]["range"] == [90_000, 100_000]
    before = everything(registry)
    with pytest.raises(ConflictError, match=r"no free range of 1 bins.*no bin is free"):
        registry.create("experiment", v2("binned-exp-5", layer={"name": "reading", "bins": 1}),
                        "al")
    assert everything(registry) == before
    registry.end("experiment", "ranged-exp-2", None, "bob")
    # a scheduled experiment may take the ended one's bins; more than are free is refused
    later = registry.create("experiment", v2("binned-exp-6", layer={
        "name": "reading", "bins": 50_000}, **SCHEDULED), "al")
    assert later.row["layer"]["range"] == [40_000, 90_000]
    with pytest.raises(ConflictError, match="no free range of 50001 bins"):
        registry.create("experiment", v2("binned-exp-7", layer={
            "name": "reading", "bins": 50_001}, **SCHEDULED), "al")


def test_the_refusal_names_the_largest_free_range(registry: Registry) -> None:
    registry.create("layer", {"name": "reading"}, "al")
    for name, bounds in (("ranged-exp-1", [10_000, 20_000]), ("ranged-exp-2", [45_000, 99_000])):
        registry.create("experiment", v2(name, layer={"name": "reading", "range": bounds}), "al")
    with pytest.raises(ConflictError, match=r"largest free range is \[20000, 45000\) "
                                            r"\(25000 bins\)"):
        registry.create("experiment", v2("binned-exp-3", layer={
            "name": "reading", "bins": 25_001}), "al")


@pytest.mark.parametrize(("bins", "message"), [
    (0, "from 1 to 100000"), (100_001, "from 1 to 100000"), (2.5, "whole number"),
    (True, "whole number")])
def test_bins_must_be_a_count_of_bins(registry: Registry, bins: Any, message: str) -> None:
    registry.create("layer", {"name": "reading"}, "al")
    with pytest.raises(ConfigError, match=message) as caught:
        registry.create("experiment", v2("binned-exp-1", layer={"name": "reading",
                                                                 "bins": bins}), "al")
    assert caught.value.field == "layer.bins"
    with pytest.raises(ConfigError, match="either range or bins"):
        registry.create("experiment", v2("binned-exp-1", layer={
            "name": "reading", "bins": 5, "range": [0, 5]}), "al")


def test_a_started_experiment_grows_in_place(registry: Registry) -> None:
    registry.create("layer", {"name": "reading"}, "al")
    registry.create("experiment", v2("left-exp-1", layer={"name": "reading",
                                                           "range": [0, 10_000]}), "al")
    registry.create("experiment", v2("grown-exp-2", layer={"name": "reading",
                                                            "range": [20_000, 30_000]}), "al")
    registry.create("experiment", v2("right-exp-3", layer={"name": "reading",
                                                            "range": [45_000, 100_000]}), "al")
    grow = {"name": "reading", "bins": 20_000}  # right first: [20000, 40000)
    assert patch(registry, "experiment", "grown-exp-2", {"layer": grow})["layer"][
        "range"] == [20_000, 40_000]
    grow = {"name": "reading", "bins": 30_000}  # 5000 more on the right, the rest on the left
    assert patch(registry, "experiment", "grown-exp-2", {"layer": grow})["layer"][
        "range"] == [15_000, 45_000]
    before = everything(registry)
    with pytest.raises(ConflictError, match=r"\[15000, 45000\) can only grow in place.*at most "
                                            r"35000 bins, not 35001"):
        patch(registry, "experiment", "grown-exp-2", {"layer": {"name": "reading",
                                                                 "bins": 35_001}})
    with pytest.raises(ConflictError, match="can only grow"):
        patch(registry, "experiment", "grown-exp-2", {"layer": {"name": "reading",
                                                                 "bins": 29_999}})
    assert everything(registry) == before
    # the same size again is the same range: nothing changes
    with pytest.raises(ConfigError, match="every field to its current value"):
        patch(registry, "experiment", "grown-exp-2", {"layer": {"name": "reading",
                                                                 "bins": 30_000}})


def test_a_scheduled_experiment_moves_when_it_cannot_grow_in_place(registry: Registry) -> None:
    registry.create("layer", {"name": "reading"}, "al")
    registry.create("experiment", v2("later-exp-1", layer={"name": "reading", "bins": 10_000},
                                     **SCHEDULED), "al")
    registry.create("experiment", v2("wall-exp-2", layer={"name": "reading",
                                                           "range": [10_000, 20_000]}), "al")
    moved = patch(registry, "experiment", "later-exp-1", {"layer": {"name": "reading",
                                                                     "bins": 15_000}})
    assert moved["layer"]["range"] == [20_000, 35_000]
    shrunk = patch(registry, "experiment", "later-exp-1", {"layer": {"name": "reading",
                                                                      "bins": 5_000}})
    assert shrunk["layer"]["range"] == [20_000, 25_000]


def test_layer_occupancy_lists_holders_and_free_ranges(
        registry: Registry, clock: FakeClock) -> None:
    registry.create("layer", {"name": "reading"}, "al")
    registry.create("experiment", v2("holder-exp-1", layer={"name": "reading",
                                                             "range": [50_000, 60_000]}), "al")
    registry.create("experiment", v2("holder-exp-2", layer={"name": "reading",
                                                             "range": [0, 20_000]},
                                     **SCHEDULED), "al")
    registry.create("experiment", v2("ended-exp-3", layer={"name": "reading",
                                                            "range": [70_000, 80_000]},
                                     start="2026-01-01T00:00:00Z", end="2026-02-01T00:00:00Z"),
                    "al")
    assert registry.layer_occupancy("reading") == {
        "bins": 100_000,
        "experiments": [
            {"name": "holder-exp-2", "range": [0, 20_000], "status": "scheduled", **SCHEDULED},
            {"name": "holder-exp-1", "range": [50_000, 60_000], "status": "running",
             **RUNNING}],
        "free": [[20_000, 50_000], [60_000, 100_000]]}
