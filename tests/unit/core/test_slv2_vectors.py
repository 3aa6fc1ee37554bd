"""sl-v2 against its independent oracle: the vectors written by tests/vectors/generate/sl-v2.mjs.

Every case runs through ``resolve`` (group and reason), through ``assign`` in both
implementations (the Python reference and the C accelerator), and, grouped by experiment and
site, through the batch functions and ``assign_many``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import implementations
from conftest import VECTORS, unavailable
from implementations import Batch, Single
from splitlab import Experiment
from splitlab.bulk import assign_many
from splitlab.core import assignment
from splitlab.core.resolution import resolve, resolve_except_targeting
from splitlab.errors import ConfigError

implementation = implementations.implementation  # both implementations, a fixture
DOCUMENT: dict[str, Any] = json.loads((VECTORS / "sl-v2.json").read_text("utf-8"))
CASES: list[dict[str, Any]] = DOCUMENT["cases"]
GATE_FIELDS = ("layer", "holdouts", "targeting")


def row_of(case_input: dict[str, Any]) -> dict[str, Any]:
    row = {"name": case_input["experiment"], "groups": case_input["groups"],
           "algorithm": "sl-v2", "traffic_split": case_input["traffic_split"],
           "user_identifier_type": "mw-user"}
    row.update({key: case_input[key] for key in GATE_FIELDS if key in case_input})
    return row


def experiment_of(case_input: dict[str, Any]) -> Experiment:
    return Experiment.from_config(row_of(case_input))


def test_the_vectors_cover_what_the_issue_asks_for() -> None:
    ids = [case["id"] for case in CASES]
    for prefix in ("w-zero-group", "site-", "limit-first-slot-in", "layer-lo-hi",
                   "layer-shifted", "holdout-edge-held", "holdout-edge-free", "targeting-",
                   "equal-"):
        assert any(i.startswith(prefix) for i in ids), prefix
    reasons = {case["expected"]["reason"] for case in CASES}
    assert reasons == {"assigned", "not_sampled", "holdout", "layer", "targeting"}
    assert any(not str(c["input"]["identifier"]).isascii() for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_resolve_and_assign_match_the_vector(
    case: dict[str, Any], implementation: tuple[Single, Batch]
) -> None:
    single, _ = implementation
    given = case["input"]
    experiment = experiment_of(given)
    expected = case["expected"]
    got = single(given["identifier"], experiment, given["site"], given.get("attributes"))
    assert got._asdict() == {k: expected[k] for k in ("subject_id", "in_sample", "group")}
    resolution = resolve(given["identifier"], experiment, given["site"], given.get("attributes"))
    assert (resolution.group, resolution.reason, resolution.subject_id) == (
        expected["group"], expected["reason"], expected["subject_id"])


def test_resolve_except_targeting_is_resolve_of_the_row_without_its_condition() -> None:
    targeted = 0
    for case in CASES:
        given = case["input"]
        untargeted = experiment_of({k: v for k, v in given.items() if k != "targeting"})
        found = resolve_except_targeting(given["identifier"], experiment_of(given), given["site"])
        assert found[:3] == resolve(given["identifier"], untargeted, given["site"])[:3], case["id"]
        if case["expected"]["reason"] != "targeting":
            assert (found.group, found.reason) == (case["expected"]["group"],
                                                   case["expected"]["reason"]), case["id"]
        else:
            targeted += 1
    assert targeted == 48


def test_batch_and_bulk_match_the_vectors(implementation: tuple[Single, Batch]) -> None:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for case in CASES:
        if "targeting" in case["input"]:
            continue  # batches carry no attributes
        key = json.dumps(row_of(case["input"]), sort_keys=True) + str(case["input"]["site"])
        grouped.setdefault(key, []).append(case)
    _, batch = implementation
    for cases in grouped.values():
        experiment, site = experiment_of(cases[0]["input"]), cases[0]["input"]["site"]
        ids = [c["input"]["identifier"] for c in cases]
        expected = [{k: c["expected"][k] for k in ("subject_id", "in_sample", "group")}
                    for c in cases]
        assert [a._asdict() for a in batch(ids, experiment, site)] == expected
        assert [a._asdict() for a in assign_many(ids, experiment, site, workers=1)] == expected


def test_equal_weight_rows_answer_as_tk_v1() -> None:
    equal = [c for c in CASES if "tk_v1" in c["input"]]
    assert len(equal) > 100
    for case in equal:
        given = case["input"]
        tk = Experiment.from_config({"name": given["experiment"], "groups": given["groups"],
                                     "sample_rate": given["tk_v1"]["sample_rate"],
                                     "user_identifier_type": "mw-user"})
        assert assignment.assign(given["identifier"], tk).group == case["expected"]["group"]


@pytest.mark.parametrize("case", DOCUMENT["invalid"], ids=[c["id"] for c in DOCUMENT["invalid"]])
def test_invalid_rows_are_refused_naming_the_field(case: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        experiment_of(case["input"])
    assert caught.value.field == case["expected"]["error"]["field"]
    assert case["expected"]["error"]["reason"] in caught.value.reason


def test_committed_vectors_are_what_the_javascript_generator_writes(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed; cannot re-run the independent vector generator")
    copy = tmp_path / "generate" / "sl-v2.mjs"
    copy.parent.mkdir()
    copy.write_text((VECTORS / "generate" / "sl-v2.mjs").read_text("utf-8"), "utf-8")
    subprocess.run([node, str(copy)], check=True, capture_output=True, timeout=300)
    assert json.loads((tmp_path / "sl-v2.json").read_text("utf-8")) == DOCUMENT


def test_every_case_has_its_own_id() -> None:
    ids = [case["id"] for case in DOCUMENT["cases"]]
    assert len(ids) == len(set(ids))
