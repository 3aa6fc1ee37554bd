"""The config row model: validation names the field and the reason; the digest is stable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from splitlab import Experiment
from splitlab.core.model import SampleRate, experiments_from_document, window_changes
from splitlab.errors import ConfigError


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "sticky-header-2026",
        "groups": ["control", "treatment"],
        "sample_rate": {"default": 0.1, "0.5": ["enwiki", "dewiki"]},
        "user_identifier_type": "edge-unique",
        "start": "2026-11-01T00:00:00Z",
        "end": "2027-02-01T00:00:00Z",
        "stream_name": "product_metrics.web_base",
        "schema_id": "/analytics/product_metrics/web/base/2.1.0",
        "contextual_attributes": ["page_namespace"],
        "phase_index": 0,
        "version": 1,
    }
    base.update(changes)
    return base


def test_a_full_row_round_trips_through_the_wire_form() -> None:
    exp = Experiment.from_config(row())
    assert exp.groups == ("control", "treatment")
    assert exp.sample_rate.for_site("enwiki") == 0.5
    assert exp.sample_rate.for_site("frwiki") == 0.1
    assert exp.sample_rate.for_site(None) == 0.1
    again = Experiment.from_config(exp.to_config())
    assert again == exp
    assert exp.to_config()["sample_rate"] == {"default": 0.1, "0.5": ["dewiki", "enwiki"]}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": ""}, "name", "non-empty"),
        ({"name": "   "}, "name", "non-empty"),
        ({"name": 7}, "name", "non-empty"),
        ({"groups": []}, "groups", "non-empty"),
        ({"groups": "control"}, "groups", "list"),
        ({"groups": ["a", "b", "a"]}, "groups", "duplicate group 'a'"),
        ({"groups": ["a", ""]}, "groups", "non-empty string"),
        ({"sample_rate": {"default": 1.5}}, "sample_rate.default", "[0, 1]"),
        ({"sample_rate": {"default": -0.1}}, "sample_rate.default", "[0, 1]"),
        ({"sample_rate": {"default": "half"}}, "sample_rate.default", "number"),
        ({"sample_rate": {"default": True}}, "sample_rate.default", "number"),
        ({"sample_rate": {"default": float("nan")}}, "sample_rate.default", "[0, 1]"),
        ({"sample_rate": {"0.5": ["enwiki"]}}, "sample_rate", "no 'default'"),
        ({"sample_rate": {"default": 0.1, "2": ["enwiki"]}}, "sample_rate['2']", "[0, 1]"),
        ({"sample_rate": {"default": 0.1, "lots": ["x"]}}, "sample_rate", "'lots'"),
        ({"sample_rate": {"default": 0.1, "0.5": "enwiki"}}, "sample_rate['0.5']", "list"),
        (
            {"sample_rate": {"default": 0.1, "0.5": ["enwiki"], "0.2": ["enwiki"]}},
            "sample_rate",
            "two rates",
        ),
        ({"user_identifier_type": "cookie"}, "user_identifier_type", "'cookie'"),
        ({"start": "2027-03-01T00:00:00Z"}, "start", "after end"),
        ({"start": "yesterday"}, "start", "ISO 8601"),
        ({"contextual_attributes": "page"}, "contextual_attributes", "list of strings"),
        ({"phase_index": -1}, "phase_index", "non-negative"),
        ({"algorithm": "weighted-v2"}, "algorithm", "unknown"),
    ],
)
def test_a_bad_row_names_the_field_and_the_reason(
    changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Experiment.from_config(row(**changes))
    assert caught.value.field == field
    assert words in str(caught.value)


def test_a_row_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ConfigError, match="JSON object"):
        Experiment.from_config(["name"])  # type: ignore[arg-type]


def test_strict_mode_refuses_unknown_fields_and_loose_mode_ignores_them() -> None:
    assert Experiment.from_config(row(owner="web-team")).name == "sticky-header-2026"
    with pytest.raises(ConfigError) as caught:
        Experiment.from_config(row(owner="web-team"), strict=True)
    assert caught.value.field == "owner"


def test_names_in_the_wild_that_break_registry_rules_are_still_accepted() -> None:
    assert Experiment.from_config(row(name="foo")).name == "foo"
    assert Experiment.from_config(row(name="Übung mit Leerzeichen")).name.startswith("Ü")


def test_activity_window_includes_both_ends_as_test_kitchen_does() -> None:
    exp = Experiment.from_config(row())
    assert exp.start is not None and exp.end is not None
    assert not exp.is_active(exp.start - timedelta(microseconds=1))
    assert exp.is_active(exp.start)
    assert exp.is_active(exp.end)
    assert not exp.is_active(exp.end + timedelta(microseconds=1))
    assert window_changes(exp.start, exp.end) == [exp.start, exp.end + timedelta(microseconds=1)]
    open_ended = Experiment.from_config(row(start=None, end=None))
    assert open_ended.is_active(datetime(1990, 1, 1, tzinfo=UTC))
    with pytest.raises(TypeError):
        exp.is_active(datetime(2026, 12, 1))


def test_offsets_are_normalised_to_utc() -> None:
    exp = Experiment.from_config(row(start="2026-11-01T02:00:00+02:00"))
    assert exp.start == datetime(2026, 11, 1, tzinfo=UTC)


def test_exposure_version_is_the_documented_digest() -> None:
    import hashlib
    import json

    exp = Experiment.from_config(row())
    # Test Kitchen's key order, its groups sorted, the rate as served (keys sorted)
    material = (
        '{"name":"sticky-header-2026","user_identifier_type":"edge-unique",'
        '"groups":["control","treatment"],"sample_rate":{"0.5":["dewiki","enwiki"],"default":0.1},'
        '"stream_name":"product_metrics.web_base",'
        '"schema_id":"/analytics/product_metrics/web/base/2.1.0",'
        '"contextual_attributes":["page_namespace"]}'
    )
    json.loads(material)  # the hand-written canonical form is itself valid JSON
    assert exp.exposure_version == hashlib.sha256(material.encode()).hexdigest()[:16]


def test_exposure_version_ignores_dates_and_group_order_but_not_the_rate() -> None:
    base = Experiment.from_config(row()).exposure_version
    assert Experiment.from_config(row(end="2027-06-01T00:00:00Z")).exposure_version == base
    assert Experiment.from_config(row(groups=["treatment", "control"])).exposure_version == base
    changed = Experiment.from_config(row(sample_rate={"default": 0.2})).exposure_version
    assert changed != base


def test_integral_rates_are_written_as_integers() -> None:
    assert SampleRate.parse({"default": 1.0, "0": ["x"]}).to_wire() == {"default": 1, "0": ["x"]}


def test_documents_are_lists_or_wrapped_lists_and_errors_name_the_row() -> None:
    assert len(experiments_from_document([row()])) == 1
    assert len(experiments_from_document({"experiments": [row()]})) == 1
    with pytest.raises(ConfigError, match=r"experiments\[1\] \(bad\)\.groups"):
        experiments_from_document([row(), row(name="bad", groups=[])])
    with pytest.raises(ConfigError, match="duplicate name"):
        experiments_from_document([row(), row()])
    with pytest.raises(ConfigError, match="expected a list"):
        experiments_from_document({"rows": []})
