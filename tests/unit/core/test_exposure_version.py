"""exposure_version against Test Kitchen's own PHP: tests/vectors/exposure-version.json holds what
its ConfigsFetcher computed for each row (tests/vectors/generate/exposure-version.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import VECTORS
from splitlab.core.exposure import (
    DEFAULT_SCHEMA,
    exposure_material,
    exposure_version,
    php_compare,
    php_double,
    php_json,
    php_sort,
)
from splitlab.core.model import Experiment
from splitlab.errors import ConfigError

VECTORS_FILE: dict[str, Any] = json.loads(
    (VECTORS / "exposure-version.json").read_text("utf-8"))
CASES: list[dict[str, Any]] = VECTORS_FILE["cases"]


def test_the_vectors_cover_what_the_issue_lists() -> None:
    assert VECTORS_FILE["function"] == "exposure_version"
    assert len(CASES) >= 200
    assert len({case["id"] for case in CASES}) == len(CASES)
    assert any(len(case["input"].get("groups") or []) > 16 for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_every_vector_gives_test_kitchens_exposure_version(case: dict[str, Any]) -> None:
    assert exposure_version(case["input"]) == case["expected"]


def test_an_experiment_carries_the_version_of_the_row_it_serves() -> None:
    experiments = []
    for case in CASES:
        try:
            experiments.append(Experiment.from_config(case["input"]))
        except ConfigError:  # rows no registry would store (rates beyond 1, no groups, ...)
            continue
    assert len(experiments) > 100
    for experiment in experiments:
        config = experiment.to_config()
        assert config["exposure_version"] == experiment.exposure_version
        assert exposure_version(config) == experiment.exposure_version


def test_the_text_hashed_is_phps_json() -> None:
    row = {"name": "a/é", "groups": ["10", "9", "b"], "sample_rate": {"default": 1e-05},
           "user_identifier_type": "mw-user", "stream_name": "s"}
    assert exposure_material(row) == (
        '{"name":"a/é","user_identifier_type":"mw-user","groups":["9","10","b"],'
        '"sample_rate":{"default":1.0e-5},"stream_name":"s",'
        f'"schema_id":"{DEFAULT_SCHEMA}","contextual_attributes":[]}}')


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (0.0, "0"), (-0.0, "-0"), (1e-05, "1.0e-5"), (0.0001, "0.0001"),
    (0.1, "0.1"), (1e16, "10000000000000000"), (1e17, "1.0e+17"), (1e20, "1.0e+20"),
    (5e-324, "5.0e-324"), (1.5e300, "1.5e+300"), (0.30000000000000004, "0.30000000000000004"),
])
def test_doubles_print_as_php_prints_them(value: float, text: str) -> None:
    assert php_double(value) == text


def test_integers_beyond_64_bits_are_doubles_and_index_keyed_objects_are_lists() -> None:
    assert php_json([2**63 - 1, 2**63, 10**20]) == (
        "[9223372036854775807,9.223372036854776e+18,1.0e+20]")
    assert php_json({"0": "a", "1": "b"}) == '["a","b"]'
    assert php_json({"1": "b", "0": "a"}) == '{"1":"b","0":"a"}'
    assert php_json({}) == "[]"
    assert php_json("\u2028/\x01\"") == '"\\u2028/\\u0001\\""'


def test_phps_string_comparison_is_numeric_for_numeric_strings_only() -> None:
    assert php_compare("9", "10") == -1
    assert php_compare("1e1", "10") == 0
    assert php_compare(" 1", "1 ") == 0
    assert php_compare("9a", "10") == 1
    assert php_compare("0x1A", "26") == -1


def test_sort_follows_phps_steps_when_the_comparison_is_not_transitive() -> None:
    assert php_sort(["10", "9", "2", "1"]) == ["1", "2", "9", "10"]
    # "10" < "1a" < "9" < "10": each order is its own answer (PHP 8.2's, checked by running it)
    assert php_sort(["10", "1a", "9"]) == ["10", "1a", "9"]
    assert php_sort(["1a", "9", "10"]) == ["1a", "9", "10"]
    assert php_sort(["9", "10", "1a"]) == ["9", "10", "1a"]


def test_values_json_cannot_carry_are_refused() -> None:
    for bad in (float("nan"), float("inf"), "\ud800", {1: "x"}, object()):
        with pytest.raises(ConfigError):
            php_json(bad)
