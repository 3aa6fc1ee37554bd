"""The condition language against GrowthBook's published cross-SDK cases (read in place)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from splitlab.core.jsvalues import compare, number_text, stringify, to_number
from splitlab.core.targeting import check_condition, eval_condition, referenced_attributes
from splitlab.errors import ConfigError


def growthbook_cases(refdata: Path) -> list[list[Any]]:
    cases: list[list[Any]] = json.loads(
        (refdata / "growthbook-cases.json").read_text("utf-8"))["evalCondition"]
    return cases


def test_every_published_eval_condition_case_passes(refdata: Path) -> None:
    cases = growthbook_cases(refdata)
    assert len(cases) == 248  # the count the issue and the refdata README give
    failures = []
    for name, condition, attributes, expected, *rest in cases:
        saved_groups = rest[0] if rest else None
        if eval_condition(attributes, condition, saved_groups) is not expected:
            failures.append(name)
    assert failures == []


def test_the_config_check_refuses_only_the_published_unknown_operator_case(
    refdata: Path,
) -> None:
    refused = []
    for name, condition, *_ in growthbook_cases(refdata):
        try:
            check_condition(condition)
        except ConfigError as error:
            refused.append((name, error.field))
    assert refused == [("unknown operator - pass", "targeting.name.$regx")]


@pytest.mark.parametrize(("condition", "field"), [
    ([], "targeting"),
    ({"country": {"$inn": ["us"]}}, "targeting.country.$inn"),
    ({"$or": {"a": 1}}, "targeting.$or"),
    ({"tags": {"$elemMatch": {"$eq": 1, "$bad": 2}}}, "targeting.tags.$elemMatch.$bad"),
    ({"$and": [{"a": {"$not": {"$nope": 1}}}]}, "targeting.$and[0].a.$not.$nope"),
])
def test_bad_conditions_are_refused_naming_the_place(condition: Any, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_condition(condition)
    assert caught.value.field == field


def test_a_condition_must_be_a_mapping() -> None:
    with pytest.raises(TypeError):
        eval_condition({}, [{"a": 1}])  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (0.1, "0.1"), (1e21, "1e+21"), (1e-7, "1e-7"), (0.000001, "0.000001"),
    (123456789012345680000.0, "123456789012345680000"), (-2.5, "-2.5"), (1.5e-10, "1.5e-10"),
])
def test_numbers_print_as_javascript_prints_them(value: float, text: str) -> None:
    assert number_text(value) == text


def test_javascript_coercions() -> None:
    assert to_number(" 12 ") == 12 and to_number("0x1f") == 31 and to_number("") == 0
    assert to_number(None) == 0 and to_number(True) == 1
    assert compare("10", "9") == -1 and compare("10", 9) == 1 and compare("a", 1) is None
    assert stringify({"b": 1, "1": [1.0, None, "ü"]}) == '{"1":[1,null,"ü"],"b":1}'


def test_compiled_conditions_answer_as_the_interpreter(refdata: Path) -> None:
    from splitlab.core.condition_compiler import compile_condition

    failures = []
    for name, condition, attributes, expected, *rest in growthbook_cases(refdata):
        if compile_condition(condition, rest[0] if rest else None)(attributes) is not expected:
            failures.append(name)
    assert failures == []


@pytest.mark.parametrize("attributes", [
    {}, {"n": None}, {"n": 5}, {"n": 5.5}, {"n": "5"}, {"n": "x"}, {"n": True}, {"n": [5]},
    {"n": float("nan")}, {"s": "a"}, {"s": ["b", "a"]}, {"s": 1}, {"s": ["1", 1]},
    {"a": {"b": "a"}}, {"n": 10**30},
])
def test_compiled_fast_paths_agree_with_the_interpreter(attributes: dict[str, Any]) -> None:
    from splitlab.core.condition_compiler import compile_condition

    conditions: list[dict[str, Any]] = [
        {"n": {"$gte": 5}}, {"n": {"$lt": 5.5}}, {"n": {"$gt": 4, "$lte": 5}}, {"n": 5},
        {"n": "5"}, {"s": {"$in": ["a", "c"]}}, {"s": {"$in": ["1", 1]}}, {"n": {"$eq": 5}},
        {"n": {"$ne": 5}}, {"a.b": "a"}, {"$or": [{"n": 5}, {"s": "a"}]}, {"$nor": []},
        {"$and": [{"n": {"$gte": 1}}]}, {"$not": {"s": {"$in": ["a"]}}}, {"$or": "bad"},
    ]
    for condition in conditions:
        assert compile_condition(condition)(attributes) is eval_condition(attributes, condition)


@pytest.mark.parametrize(("condition", "names"), [
    ({}, set()),
    ({"platform": "mobile", "edit_count": {"$gte": 10}}, {"platform", "edit_count"}),
    ({"user.profile.age": {"$gt": 18}, "user.id": 1}, {"user"}),
    ({"$or": [{"a": 1}, {"$and": [{"b.c": 2}, {"$nor": [{"d": 3}]}]}], "$not": {"e": 4}},
     {"a", "b", "d", "e"}),
    ({"tags": {"$elemMatch": {"name": "x", "other": {"$not": {"deep": 1}}}}}, {"tags"}),
    ({"$fancy": 1, "n": {"$not": {"$in": [1]}}}, {"$fancy", "n"}),
])
def test_referenced_attributes_are_the_first_segments_of_every_path(
    condition: dict[str, Any], names: set[str]
) -> None:
    assert referenced_attributes(condition) == names


def test_a_condition_reads_only_the_attributes_it_references(refdata: Path) -> None:
    """GrowthBook's cases as the oracle: dropping every other attribute changes no answer."""
    checked = 0
    for name, condition, attributes, expected, *rest in growthbook_cases(refdata):
        if not isinstance(attributes, dict):
            continue
        needed = referenced_attributes(condition)
        kept = {key: value for key, value in attributes.items() if key in needed}
        assert eval_condition(kept, condition, rest[0] if rest else None) is expected, name
        checked += 1
    assert checked == 248
