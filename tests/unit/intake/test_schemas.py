"""The schema repository and splitlab's own schemas, checked against Wikimedia's published files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from splitlab.errors import InvalidEventError
from splitlab.intake.schemas import SchemaRepository, normalize_schema_id

WEB = "analytics/product_metrics/web/base"


def published(refdata: Path, title: str, version: str) -> dict[str, Any]:
    path = refdata / "wikimedia-schemas" / "jsonschema" / title / f"{version}.yaml"
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def ours(title: str, version: str) -> dict[str, Any]:
    root = Path(__file__).resolve().parents[3] / "src" / "splitlab" / "data" / "schemas"
    document: dict[str, Any] = json.loads((root / title / f"{version}.json").read_text())
    return document


def skeleton(node: Any) -> Any:
    """The constraints of a schema, without prose (descriptions, examples)."""
    if isinstance(node, dict):
        return {k: skeleton(v) for k, v in node.items() if k not in ("description", "examples")}
    if isinstance(node, list):
        return [skeleton(v) for v in node]
    return node


def embedded_examples(refdata: Path, title: str, version: str) -> list[Any]:
    path = refdata / "wikimedia-schemas/examples/schema-embedded/jsonschema" / title
    examples: list[Any] = json.loads((path / f"{version}.json").read_text())
    return examples


def test_web_base_1_3_0_has_exactly_the_published_constraints(refdata: Path) -> None:
    theirs = skeleton(published(refdata, WEB, "1.3.0"))
    mine = skeleton(ours(WEB, "1.3.0"))
    assert mine == theirs


def test_error_schema_has_the_published_error_2_1_0_field_set(refdata: Path) -> None:
    theirs = skeleton(published(refdata, "error", "2.1.0"))
    mine = skeleton(ours("error", "2.1.0"))
    assert mine == theirs


# The contextual attributes Wikimedia's clients send that published 1.3.0 lacks, with the types
# read from their sources: Metrics Platform js/src/Context.js (VALID_ATTRIBUTE_NAMES, typedefs),
# Test Kitchen modules/ext.testKitchen/ContextualAttributesFactory.js and
# includes/Sdk/ContextualAttributesFactory.php.
ADDED = {("agent", "ua_string"): "string", ("page", "wikidata_id"): "integer",
         ("mediawiki", "is_production"): "boolean",
         ("mediawiki", "is_debug_mode"): ["boolean", "integer"]}


def without_added(properties: dict[str, Any]) -> dict[str, Any]:
    trimmed = {k: dict(v) for k, v in properties.items()}
    for (group, name), kind in ADDED.items():
        inner = dict(trimmed[group]["properties"])
        assert inner.pop(name)["type"] == kind, (group, name)
        trimmed[group]["properties"] = inner
    return trimmed


def test_web_base_1_5_0_is_1_3_0_plus_the_clients_contextual_attributes(refdata: Path) -> None:
    theirs = skeleton(published(refdata, WEB, "1.3.0"))
    mine = skeleton(ours(WEB, "1.5.0"))
    assert mine["$id"] == f"/{WEB}/1.5.0"
    assert without_added(mine.pop("properties")) == theirs.pop("properties")
    assert {**mine, "$id": theirs["$id"]} == theirs


def test_web_base_2_1_0_is_1_5_0_with_the_singular_experiment(refdata: Path) -> None:
    theirs = skeleton(published(refdata, WEB, "1.3.0"))["properties"]
    mine = without_added(skeleton(ours(WEB, "2.1.0"))["properties"])
    assert set(mine) == (set(theirs) - {"experiments"}) | {"experiment"}
    for name in set(theirs) - {"experiments"}:
        assert mine[name] == theirs[name], name
    assert set(mine["experiment"]["properties"]) == {
        "enrolled", "assigned", "subject_id", "sampling_unit", "coordinator", "phase_index",
        "version", "other_assigned", "exposure_version"}
    assert mine["experiment"]["properties"]["sampling_unit"]["enum"] == [
        "mw-user", "edge-unique", "session"]


@pytest.mark.parametrize("version", ["1.5.0", "2.1.0"])
def test_reconstructed_versions_say_they_are_not_wikimedias_and_cite_each_added_field(
        version: str) -> None:
    document = ours(WEB, version)
    assert "not available to us" in document["description"]
    for group, name in ADDED:
        text = document["properties"][group]["properties"][name]["description"]
        assert "Source" in text and ("Test Kitchen" in text or "Metrics Platform" in text)


@pytest.mark.parametrize(("title", "version"), [(WEB, "1.3.0"), ("error", "2.1.0")])
def test_published_embedded_examples_validate(refdata: Path, title: str, version: str) -> None:
    schema = SchemaRepository().get(f"/{title}/{version}")
    for example in embedded_examples(refdata, title, version):
        schema.validate(example)


def test_seed_production_event_validates_against_1_3_0(refdata: Path) -> None:
    event = json.loads((refdata / "wikimedia-schemas/examples/growth_experiment_enrollment.json")
                       .read_text())
    SchemaRepository().get(event["$schema"]).validate(event)


def test_violations_are_named() -> None:
    schema = SchemaRepository().get(f"/{WEB}/1.3.0")
    event = {"$schema": f"/{WEB}/1.3.0", "action": "click", "agent": {"client_platform": "x"},
             "meta": {"stream": "s", "dt": "2026-11-22T00:00:00Z"}}
    with pytest.raises(InvalidEventError, match="client_platform"):
        schema.validate(event)
    event["agent"] = {}
    event["experiment"] = {"enrolled": "e", "assigned": "g"}
    with pytest.raises(InvalidEventError, match="experiment"):
        schema.validate(event)


@pytest.mark.parametrize("uri", [
    f"/{WEB}/1.2.0", f"/{WEB}/2.0.0", f"/{WEB}/1.3.1", "/nope/1.0.0"])
def test_unknown_versions_are_not_found_never_a_neighbour(uri: str) -> None:
    with pytest.raises(InvalidEventError, match="schema not found"):
        SchemaRepository().get(uri)


@pytest.mark.parametrize("uri", [
    f"/{WEB}/latest", f"/{WEB}/current", f"/{WEB}/1.3", "", 3, None, "/../../etc/passwd/1.0.0",
    f"/{WEB}/1.3.0.json"])
def test_malformed_ids_are_refused(uri: object) -> None:
    with pytest.raises(InvalidEventError):
        SchemaRepository().get(uri)


@pytest.mark.parametrize(("uri", "expected"), [
    (f"/{WEB}/1.3.0#", f"/{WEB}/1.3.0"),
    (f"https://schema.example.org/secondary/jsonschema/{WEB}/1.3.0", f"/{WEB}/1.3.0"),
    (f"/{WEB}/2.1.0", f"/{WEB}/2.1.0"),
])
def test_ids_are_normalized(uri: str, expected: str) -> None:
    assert normalize_schema_id(uri) == expected
    assert SchemaRepository().get(uri).id == expected


def test_an_operator_directory_comes_first_and_ids_must_match(tmp_path: Path) -> None:
    folder = tmp_path / "custom" / "thing"
    folder.mkdir(parents=True)
    (folder / "1.0.0.json").write_text(json.dumps(
        {"$id": "/custom/thing/1.0.0", "title": "custom/thing", "type": "object"}))
    (folder / "2.0.0.json").write_text(json.dumps({"$id": "/custom/thing/9.0.0"}))
    repo = SchemaRepository.with_directory(tmp_path)
    assert repo.get("/custom/thing/1.0.0").title == "custom/thing"
    assert repo.get("/custom/thing/1.0.0") is repo.get("/custom/thing/1.0.0")
    assert repo.get(f"/{WEB}/2.1.0").location == "built-in"
    with pytest.raises(InvalidEventError, match="does not declare"):
        repo.get("/custom/thing/2.0.0")
