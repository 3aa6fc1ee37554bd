"""tk-v1 against independent oracles: the JavaScript vectors and Test Kitchen's own PHP results."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import implementations
from conftest import ROOT, VECTORS, unavailable
from implementations import Batch, Single
from splitlab import Experiment, assign
from splitlab.bulk import assign_many
from splitlab.core import assignment
from splitlab.core.assignment import Assignment

implementation = implementations.implementation  # both implementations, a fixture
CASES: list[dict[str, Any]] = json.loads((VECTORS / "tk-v1.json").read_text("utf-8"))["cases"]


def experiment_of(case_input: dict[str, Any]) -> Experiment:
    return Experiment.from_config(
        {
            "name": case_input["experiment"],
            "groups": case_input["groups"],
            "sample_rate": case_input["sample_rate"],
            "user_identifier_type": "mw-user",
        }
    )


def test_the_public_functions_use_the_accelerator_when_it_is_built() -> None:
    if not assignment.ACCELERATED:
        unavailable("the C accelerator splitlab.core._tkv1 is not built (needs a C compiler)")
    assert assign is assignment.accelerated_assign


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_assign_matches_the_vector(
    case: dict[str, Any], implementation: tuple[Single, Batch]
) -> None:
    single, _ = implementation
    got = single(case["input"]["identifier"], experiment_of(case["input"]), case["input"]["site"])
    assert got._asdict() == case["expected"]
    assert type(got) is Assignment


def test_batch_and_bulk_give_the_same_answers_as_the_vectors(
    implementation: tuple[Single, Batch],
) -> None:
    _, batch = implementation
    by_experiment: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for case in CASES:
        key = (json.dumps(case["input"]["groups"] + [case["input"]["sample_rate"]],
                          sort_keys=True) + case["input"]["experiment"], case["input"]["site"])
        by_experiment.setdefault(key, []).append(case)
    for cases in by_experiment.values():
        exp = experiment_of(cases[0]["input"])
        site = cases[0]["input"]["site"]
        ids = [c["input"]["identifier"] for c in cases]
        expected = [c["expected"] for c in cases]
        assert [a._asdict() for a in batch(ids, exp, site)] == expected
        assert [a._asdict() for a in assign_many(ids, exp, site, workers=1)] == expected


def test_vectors_cover_what_the_foundation_issue_asks_for() -> None:
    inputs = [c["input"] for c in CASES]
    assert {len(i["groups"]) for i in inputs} >= {1, 2, 3, 4, 5}
    assert {i["sample_rate"].get("default") for i in inputs} >= {0, 1e-6, 0.5, 1}
    assert any(isinstance(i["identifier"], int) for i in inputs)
    assert any(isinstance(i["identifier"], str) and not i["identifier"].isascii() for i in inputs)
    assert any(i["site"] for i in inputs)
    assert sum(c["id"].startswith("boundary-") for c in CASES) >= 8
    assert any(c["expected"]["in_sample"] for c in CASES)
    assert any(not c["expected"]["in_sample"] for c in CASES)


def test_vectors_include_and_agree_with_test_kitchens_own_php_results(refdata: Path) -> None:
    upstream = json.loads((refdata / "testkitchen-upstream-fixtures.json").read_text("utf-8"))
    ours = {c["id"]: c for c in CASES}
    assert upstream["cases"], "the upstream fixture file has no cases"
    for case in upstream["cases"]:
        vector = ours[f"testkitchen-{case['id']}"]
        assert vector["input"]["identifier"] == case["identifier"]
        assert vector["expected"] == {
            "subject_id": case["subject_id"],
            "in_sample": case["in_sample"],
            "group": case["group"],
        }
        exp = experiment_of(vector["input"])
        assert int(assign(case["identifier"], exp).subject_id[:6], 16) / 2**24 == pytest.approx(
            case["user_hash"], abs=0
        )


def test_committed_vectors_are_what_the_javascript_generator_writes(
    tmp_path: Path, refdata: Path
) -> None:
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed; cannot re-run the independent vector generator")
    generator = ROOT / "tests" / "vectors" / "generate" / "tk-v1.mjs"
    copy = tmp_path / "generate" / "tk-v1.mjs"
    copy.parent.mkdir()
    copy.write_text(generator.read_text("utf-8"), "utf-8")
    fixtures = str(refdata / "testkitchen-upstream-fixtures.json")
    subprocess.run([node, str(copy), fixtures], check=True, capture_output=True, timeout=120)
    regenerated = json.loads((tmp_path / "tk-v1.json").read_text("utf-8"))
    assert regenerated["cases"] == CASES
