"""The OpenFeature provider, driven through the real OpenFeature SDK client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .sdk_helpers import Clock, make, oracle, row

pytest.importorskip("openfeature")
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from splitlab.sdk.openfeature import SplitlabProvider

GROUPS = ["control", "treatment"]
DOMAIN = "splitlab-provider-test"


@pytest.fixture
def features() -> Iterator[OpenFeatureClient]:
    clock = Clock()
    client, _, sender = make([row("half-sample-test", rate=0.5),
                              row("ended-test", end="2026-02-01T00:00:00Z")], clock)
    api.set_provider(SplitlabProvider(client), domain=DOMAIN)
    yield api.get_client(DOMAIN)
    api.clear_providers()
    assert sender.events == []  # evaluation never sends


def test_enrolled_units_get_their_group_as_a_split(features: OpenFeatureClient) -> None:
    checked = 0
    for uid in range(200):
        expected = oracle(uid, "half-sample-test", GROUPS, 0.5)
        details = features.get_string_details(
            "half-sample-test", "off", EvaluationContext(targeting_key=str(uid)))
        if expected is None:
            assert (details.value, details.reason, details.variant) == ("off", Reason.DEFAULT,
                                                                        None)
        else:
            assert (details.value, details.reason, details.variant) == (expected, Reason.SPLIT,
                                                                        expected)
            checked += 1
        assert details.error_code is None
    assert 50 < checked < 150


def test_errors_come_back_as_codes(features: OpenFeatureClient) -> None:
    get = features.get_string_details
    missing_key = get("half-sample-test", "off", EvaluationContext())
    assert (missing_key.value, missing_key.error_code) == ("off", ErrorCode.TARGETING_KEY_MISSING)
    unknown = get("no-such-flag-x", "off", EvaluationContext(targeting_key="1"))
    assert (unknown.value, unknown.error_code) == ("off", ErrorCode.FLAG_NOT_FOUND)
    boolean = features.get_boolean_details(
        "half-sample-test", False, EvaluationContext(targeting_key="1"))
    assert (boolean.value, boolean.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    ended = get("ended-test", "off", EvaluationContext(targeting_key="1"))
    assert (ended.value, ended.reason, ended.error_code) == ("off", Reason.DISABLED, None)


def test_provider_refuses_a_wrong_client() -> None:
    with pytest.raises(TypeError):
        SplitlabProvider(object())  # type: ignore[arg-type]
