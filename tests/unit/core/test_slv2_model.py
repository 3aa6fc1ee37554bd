"""The sl-v2 part of a config row: validation (field and reason), the wire form, the resolver."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from splitlab import Experiment
from splitlab.core.resolution import Reason, resolve
from splitlab.errors import ConfigError


def row(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "weighted-header", "groups": ["control", "a", "b"],
                            "algorithm": "sl-v2", "user_identifier_type": "edge-unique",
                            "traffic_split": {"default": {"control": 10, "a": 10, "b": 20},
                                              "dewiki": {"control": 0.5, "a": 0.5}}}
    base.update(fields)
    return base


def test_shares_rate_and_slots_follow_the_specification() -> None:
    v2 = Experiment.from_config(row()).slv2
    assert v2 is not None
    default, dewiki = v2.splits["default"], v2.splits["dewiki"]
    assert (default.shares, default.total, default.rate) == ((1, 1, 2), 4, 0.4)
    assert default.owners == (0, 1, 2, 2)
    assert (dewiki.shares, dewiki.owners, dewiki.rate) == ((1, 1, 0), (0, 1), 0.01)
    assert v2.split_for("dewiki") is dewiki and v2.split_for("frwiki") is default


def test_old_readers_get_each_sites_total_as_sample_rate() -> None:
    experiment = Experiment.from_config(row())
    assert experiment.sample_rate.to_wire() == {"default": 0.4, "0.01": ["dewiki"]}
    served = Experiment.from_config(row(sample_rate={"default": 0.4}))
    assert served.sample_rate.to_wire() == {"default": 0.4}


def test_the_wire_form_round_trips() -> None:
    given = row(layer={"name": "reading", "range": [0, 25000]},
                holdouts=[{"name": "global", "percent": 2.5}],
                targeting={"platform": {"$in": ["mobile"]}})
    wire = Experiment.from_config(given).to_config()
    assert wire["algorithm"] == "sl-v2"
    assert wire["traffic_split"] == {"default": {"control": 10, "a": 10, "b": 20},
                                     "dewiki": {"control": 0.5, "a": 0.5}}
    assert wire["layer"] == given["layer"] and wire["holdouts"] == given["holdouts"]
    assert Experiment.from_config(wire, strict=False) == Experiment.from_config(given)
    assert "algorithm" not in Experiment.from_config(
        {"name": "plain-rows", "groups": ["a"], "sample_rate": 1,
         "user_identifier_type": "mw-user"}).to_config()


@pytest.mark.parametrize(("fields", "field", "reason"), [
    ({"algorithm": "sl-v9"}, "algorithm", "unknown assignment algorithm"),
    ({"traffic_split": {}}, "traffic_split", "non-empty object"),
    ({"traffic_split": {"default": {"c": 1}}}, "traffic_split['default']", "not in groups"),
    ({"traffic_split": {"default": {"a": "5"}}}, "traffic_split['default']['a']", "a percent"),
    ({"traffic_split": {"default": {"a": 1.0005}}}, "traffic_split['default']['a']", "3 decimals"),
    ({"traffic_split": {"x": {"a": 60, "b": 41}}}, "traffic_split['x']", "more than 100"),
    ({"traffic_split": {"default": {"a": 33.333, "b": 33.334}}}, "traffic_split['default']",
     "ratios must reduce to at most 10000 shares"),
    ({"layer": {"name": "l", "range": [5, 5]}}, "layer.range", "lo < hi"),
    ({"layer": {"name": "l", "range": [0, 100001]}}, "layer.range", "lo < hi"),
    ({"layer": {"range": [0, 1]}}, "layer.name", "non-empty string"),
    ({"holdouts": [{"name": "h", "percent": 1}, {"name": "h", "percent": 2}]},
     "holdouts[1].name", "duplicate holdout"),
    ({"holdouts": [{"name": "h", "percent": 101}]}, "holdouts[0].percent", "[0, 100]"),
    ({"targeting": {"a": {"$bogus": 1}}}, "targeting.a.$bogus", "not an operator"),
])
def test_bad_sl_v2_fields_name_the_field_and_the_reason(
    fields: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Experiment.from_config(row(**fields))
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_ten_thousand_shares_are_allowed() -> None:
    experiment = Experiment.from_config(row(traffic_split={"default": {"a": 0.001, "b": 9.999}}))
    assert experiment.slv2 is not None and experiment.slv2.splits["default"].total == 10000


def test_resolve_gives_the_reasons_in_their_order() -> None:
    experiment = Experiment.from_config(row(start="2026-01-01T00:00:00Z",
                                            end="2026-02-01T00:00:00Z"))
    during, after = datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    assert resolve("u", None).reason is Reason.UNKNOWN_EXPERIMENT
    forced = resolve("u", experiment, now=after, override="b")
    assert (forced.group, forced.reason, forced.enrolled) == ("b", Reason.OVERRIDE, False)
    assert resolve("u", experiment, now=after).reason is Reason.INACTIVE
    missing = resolve(None, experiment, now=during)
    assert (missing.reason, missing.subject_id) == (Reason.NOT_SAMPLED, None)
    with pytest.raises(ValueError, match="no group"):
        resolve("u", experiment, override="nope")
    held = Experiment.from_config(row(holdouts=[{"name": "all", "percent": 100}],
                                      layer={"name": "l", "range": [0, 1]},
                                      targeting={"never": True}))
    assert resolve("u", held).reason is Reason.HOLDOUT
    layered = Experiment.from_config(row(layer={"name": "l", "range": [0, 1]},
                                         targeting={"never": True}))
    assert {resolve(i, layered).reason for i in range(50)} == {Reason.LAYER}
    targeted = Experiment.from_config(row(targeting={"platform": "mobile"}))
    assert resolve("u", targeted).reason is Reason.TARGETING
    assert resolve("u", targeted, attributes={"platform": "mobile"}).reason in (
        Reason.ASSIGNED, Reason.NOT_SAMPLED)
