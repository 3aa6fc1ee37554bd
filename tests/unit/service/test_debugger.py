"""The dashboard debugger's answers: the reason per experiment, with oracles computed here from
DESIGN.md's formulas (holdout and layer bins), not from the core's code."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from splitlab.core.model import Experiment
from splitlab.errors import ConfigError
from splitlab.service.ui import debugger

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def design_bin(identifier: str, kind: str, name: str) -> int:
    digest = hashlib.sha256(f"{identifier}:{kind}:{name}".encode()).hexdigest()
    return (int(digest[:8], 16) * 100000) >> 32


GATED = Experiment.from_config({
    "name": "gated-debug-exp", "groups": ["control", "treatment"], "algorithm": "sl-v2",
    "traffic_split": {"default": {"control": 50, "treatment": 50}},
    "holdouts": [{"name": "hold-half", "percent": 50}],
    "layer": {"name": "reading", "range": [0, 50000]},
    "targeting": {"platform": "mobile"}, "user_identifier_type": "session"})
LATER = Experiment.from_config({
    "name": "scheduled-debug-exp", "groups": ["a", "b"], "sample_rate": 1,
    "user_identifier_type": "mw-user", "start": "2027-01-01T00:00:00Z"})


@pytest.mark.parametrize("platform", ["mobile", "desktop"])
def test_reasons_follow_the_gates_in_order(platform: str) -> None:
    seen = set()
    for n in range(300):
        identifier = f"unit-{n}"
        [answer, later] = debugger.answers([LATER, GATED], identifier, None, None,
                                           attributes={"platform": platform}, now=NOW)
        if design_bin(identifier, "holdout", "hold-half") < 50000:
            expected = "holdout"
        elif design_bin(identifier, "layer", "reading") >= 50000:
            expected = "layer"
        else:
            expected = "assigned" if platform == "mobile" else "targeting"
        assert (answer.experiment, answer.reason) == ("gated-debug-exp", expected)
        assert answer.in_sample == (expected == "assigned") == (answer.group is not None)
        assert (later.reason, later.group, later.subject_id) == ("inactive", None, None)
        assert "starts at 2027-01-01" in later.why
        seen.add(expected)
    assert len(seen) == 3


def test_the_site_is_an_attribute_and_given_attributes_win() -> None:
    exp = Experiment.from_config({
        "name": "site-target-exp", "groups": ["a"], "algorithm": "sl-v2",
        "traffic_split": {"default": {"a": 100}}, "targeting": {"site": "dewiki"},
        "user_identifier_type": "session"})
    [on_de] = debugger.answers([exp], "x", "dewiki", None, now=NOW)
    [overridden] = debugger.answers([exp], "x", "dewiki", None,
                                    attributes={"site": "enwiki"}, now=NOW)
    assert (on_de.reason, overridden.reason) == ("assigned", "targeting")


def test_another_identifier_type_does_not_apply() -> None:
    [answer] = debugger.answers([GATED], "12", None, "mw-user",
                                attributes={"platform": "mobile"}, now=NOW)
    assert not answer.applies and answer.group is None and "does not apply" in answer.why


@pytest.mark.parametrize(("text", "message"), [
    ("[1]", "must be a JSON object"), ("{platform: 1}", "not valid JSON"),
    ('"mobile"', "must be a JSON object")])
def test_attributes_must_be_a_json_object(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        debugger.parse_attributes(text)
    assert debugger.parse_attributes("  ") == {}
    assert debugger.parse_attributes('{"edit_count": 3}') == {"edit_count": 3}
