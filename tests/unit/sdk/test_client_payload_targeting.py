"""Targeted ``sl-v2`` client experiments in the payload: the server decides a condition when it
knows every attribute the condition reads, else the condition travels (signed, under hashed
names too) with only the server's values of the attributes it reads. GrowthBook's published
``evalCondition`` cases (read in place from the reference data) are the oracle of the answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from splitlab.core.model import Experiment
from splitlab.core.resolution import resolve
from splitlab.core.targeting import check_condition, eval_condition, referenced_attributes
from splitlab.errors import ConfigError, SignatureError
from splitlab.sdk.bootstrap import payload_body_classes
from splitlab.sdk.client_payload import PayloadOptions, build_payload, name_key

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
UNIT = "reader-42"
VIEWPORT = {"$or": [{"viewport": {"$gte": 1000}}, {"platform": "mobile"}], "is_logged_in": False}
SERVER = {"site": "enwiki", "platform": "desktop", "is_logged_in": False, "skin": "vector-2022",
          "edit_count": 7, "registration_date": "2026-01-02T03:04:05Z"}


def targeted(name: str, condition: dict[str, Any] | None, **extra: Any) -> Experiment:
    row: dict[str, Any] = {"name": name, "groups": ["control", "treatment"],
                           "algorithm": "sl-v2", "user_identifier_type": "edge-unique",
                           "traffic_split": {"default": {"control": 50, "treatment": 50}}}
    if condition is not None:
        row["targeting"] = condition
    return Experiment.from_config({**row, **extra})


def entries(experiments: list[Experiment], attributes: dict[str, Any] | None,
            options: PayloadOptions | None = None) -> dict[str, Any]:
    payload = build_payload(experiments, {"edge-unique": UNIT}, NOW, options, attributes)
    found: dict[str, Any] = payload["experiments"]
    return found


def test_a_condition_on_server_attributes_is_decided_on_the_server() -> None:
    experiment = targeted("mobile-only-exp", {"platform": "mobile", "edit_count": {"$gte": 5}})
    plain = resolve(UNIT, targeted("mobile-only-exp", None))
    passing = entries([experiment], {**SERVER, "platform": "mobile"})
    assert passing == {"mobile-only-exp": {
        "group": plain.group, "subject_id": plain.subject_id,
        "exposure_version": experiment.exposure_version, "sampling_unit": "edge-unique",
        "stream_name": "product_metrics.web_base",
        "schema_id": "/analytics/product_metrics/web/base/2.1.0"}}
    assert entries([experiment], SERVER) == {}  # desktop: decided, left out as before
    # an attribute known to be null is known: decided on the server, and it fails
    assert entries([experiment], {"platform": "mobile", "edit_count": None}) == {}


def test_a_condition_on_a_page_attribute_travels_with_only_the_attributes_it_reads() -> None:
    experiment = targeted("viewport-exp", VIEWPORT)
    entry = entries([experiment], SERVER)["viewport-exp"]
    plain = resolve(UNIT, targeted("viewport-exp", None))
    assert (entry["group"], entry["subject_id"]) == (plain.group, plain.subject_id)
    assert entry["targeting"] == VIEWPORT
    assert entry["attributes"] == {"is_logged_in": False, "platform": "desktop"}
    text = json.dumps(entry)
    for private in ("enwiki", "vector-2022", "edit_count", "registration_date", "2026-01-02"):
        assert private not in text
    # nothing known on the server: the condition travels alone
    assert entries([experiment], None)["viewport-exp"]["attributes"] == {}
    # a dotted path travels as its first segment's value, and only that
    nested = targeted("nested-exp", {"user.prefs.theme": "dark", "viewport": {"$gte": 1}})
    known = {"user": {"prefs": {"theme": "dark"}}, "site": "enwiki"}
    assert entries([nested], known)["nested-exp"]["attributes"] == {
        "user": {"prefs": {"theme": "dark"}}}


def test_holdout_layer_and_slot_are_decided_on_the_server_even_when_the_page_decides() -> None:
    held = targeted("held-exp", VIEWPORT, holdouts=[{"name": "everyone", "percent": 100}])
    outside = targeted("layered-exp", VIEWPORT, layer={"name": "l", "range": [0, 1]})
    unsampled = targeted("tiny-exp", VIEWPORT,
                         traffic_split={"default": {"control": 0.001, "treatment": 0.001}})
    assert resolve(UNIT, targeted("tiny-exp", None, traffic_split={
        "default": {"control": 0.001, "treatment": 0.001}})).group is None
    assert resolve(UNIT, targeted("layered-exp", None, layer={
        "name": "l", "range": [0, 1]})).reason == "layer"
    assert entries([held, outside, unsampled], SERVER) == {}


def test_a_tk_v1_or_untargeted_row_is_unchanged() -> None:
    tk = Experiment.from_config({"name": "tk-row-exp", "groups": ["a", "b"],
                                 "sample_rate": {"default": 1},
                                 "user_identifier_type": "edge-unique"})
    found = entries([tk, targeted("plain-v2-exp", None)], SERVER)
    assert set(found) == {"tk-row-exp", "plain-v2-exp"}
    assert all("targeting" not in e and "attributes" not in e for e in found.values())


def test_hashed_names_carry_the_condition_under_the_hashed_key() -> None:
    found = entries([targeted("secret-viewport-exp", VIEWPORT)], SERVER, PayloadOptions(salt="s1"))
    assert list(found) == [name_key("secret-viewport-exp", "s1")]
    (entry,) = found.values()
    assert entry["targeting"] == VIEWPORT and entry["attributes"]["platform"] == "desktop"
    assert "secret-viewport-exp" not in json.dumps(found)


def test_the_signature_covers_the_condition_and_the_attributes(tmp_path: Path) -> None:
    from splitlab.sdk.signing import load_or_create_signer, verify_envelope

    signer = load_or_create_signer(tmp_path)
    payload = build_payload([targeted("viewport-exp", VIEWPORT)], {"edge-unique": UNIT}, NOW,
                            None, SERVER)
    envelope = signer.sign(payload)
    assert verify_envelope(envelope, signer.jwks(), now=NOW.timestamp()) == payload
    text = envelope["payload"]
    for before, after in (('"$gte":1000', '"$gte":1001'), ('"$or"', '"$nor"'),
                          ('"platform":"desktop"}', '"platform":"mobile"}')):
        assert text.count(before) == 1, before
        tampered = {**envelope, "payload": text.replace(before, after)}
        with pytest.raises(SignatureError, match="does not match"):
            verify_envelope(tampered, signer.jwks(), now=NOW.timestamp())


def test_entries_the_page_decides_give_no_body_classes() -> None:
    experiments = [targeted("viewport-exp", VIEWPORT), targeted("plain-v2-exp", None)]
    payload = build_payload(experiments, {"edge-unique": UNIT}, NOW, None, SERVER)
    assert set(payload["experiments"]) == {"viewport-exp", "plain-v2-exp"}
    group = payload["experiments"]["plain-v2-exp"]["group"]
    assert payload_body_classes(payload) == ["xlab-experiment-plain-v2-exp",
                                             f"xlab-experiment-plain-v2-exp-{group}"]


def growthbook(refdata: Path) -> list[tuple[str, dict[str, Any], dict[str, Any], bool]]:
    """The published cases a config row can carry (a JSON object of attributes, no saved
    groups, a condition the registry accepts)."""
    cases = []
    for name, condition, attributes, expected, *rest in json.loads(
            (refdata / "growthbook-cases.json").read_text("utf-8"))["evalCondition"]:
        try:
            check_condition(condition)
        except ConfigError:
            continue
        if not rest and isinstance(attributes, dict):
            cases.append((name, condition, attributes, expected))
    return cases


def test_growthbook_cases_server_decided_or_travelling_give_the_published_answer(
    refdata: Path,
) -> None:
    """Each case with all its attributes on the server is decided there (listed iff the
    published answer is true); with half of them (by sorted name) the condition travels, and the
    server's half merged with the page's other half gives the published answer."""
    cases = growthbook(refdata)
    assert len(cases) > 200
    counts = {"server": 0, "browser": 0}
    for index, (name, condition, attributes, expected) in enumerate(cases):
        experiment = targeted(f"gb-case-{index:03d}", condition)
        needed = referenced_attributes(condition)
        decided = entries([experiment], attributes).get(experiment.name)
        if needed <= attributes.keys():
            counts["server"] += 1
            assert (decided is not None) is expected, name
            assert decided is None or "targeting" not in decided, name
        else:  # the case tests a missing attribute: the server cannot know it is missing
            assert decided is not None and decided["targeting"] == condition, name
            assert eval_condition(decided["attributes"], condition) is expected, name
        names = sorted(needed & attributes.keys())
        server = {key: attributes[key] for key in names[: len(names) // 2]}
        page = {key: value for key, value in attributes.items() if key not in server}
        split = entries([experiment], server).get(experiment.name)
        if needed <= server.keys():
            assert (split is not None) is expected, name
            continue
        counts["browser"] += 1
        assert split is not None and split["targeting"] == condition, name
        assert split["attributes"] == server, name
        assert eval_condition({**page, **split["attributes"]}, condition) is expected, name
    assert counts["server"] > 100 and counts["browser"] > 100, counts
