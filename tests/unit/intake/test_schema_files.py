"""A schema repository directory laid out as Wikimedia's: resolution, YAML/JSON, $ref, new
versions on first use, and every way out of the directory refused without reading anything."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from splitlab.cli import app
from splitlab.errors import ConfigError, InvalidEventError
from splitlab.intake.schemas import SchemaRepository

TITLE = "analytics/acme/button"


def button_schema(version: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"$id": f"/{TITLE}/{version}", "$schema": "https://json-schema.org/draft-07/schema#",
            "title": TITLE, "type": "object", "additionalProperties": False,
            "required": ["$schema", "meta"],
            "properties": {"$schema": {"type": "string"}, "meta": {"type": "object"},
                           "clicked": {"type": "boolean"}, **(extra or {})}}


def as_yaml(document: dict[str, Any]) -> str:
    """JSON is YAML; written with a YAML-only line on top so the YAML parser must read it."""
    return "# a YAML comment\n" + json.dumps(document, indent=2)


def wikimedia_layout(root: Path) -> Path:
    """``jsonschema/<title>/1.0.0.yaml`` with the bare ``1.0.0`` and ``latest`` links and a
    ``current.yaml`` source, as in schemas-event-secondary."""
    folder = root / "jsonschema" / TITLE
    folder.mkdir(parents=True)
    (folder / "1.0.0.yaml").write_text(as_yaml(button_schema("1.0.0")))
    (folder / "current.yaml").write_text("title: analytics/acme/button\nallOf:\n"
                                         "  - $ref: /fragment/acme/common/1.0.0#\n")
    os.symlink("1.0.0.yaml", folder / "1.0.0")
    os.symlink("1.0.0.yaml", folder / "latest")
    return root


def test_the_published_wikimedia_files_resolve_and_check(refdata: Path) -> None:
    repo = SchemaRepository.with_directory(refdata / "wikimedia-schemas")
    schema = repo.get("/analytics/product_metrics/web/base/1.2.0")  # not built in
    assert schema.location == "analytics/product_metrics/web/base/1.2.0.yaml"
    examples = refdata / "wikimedia-schemas/examples/schema-embedded/jsonschema"
    for example in json.loads((examples / "analytics/product_metrics/web/base/1.2.0.json")
                              .read_text()):
        schema.validate(example)
    results = repo.check()
    assert [r for r in results if r.error] == []
    assert {"/analytics/product_metrics/app/base/1.3.0", "/fragment/http/1.2.0",
            "/analytics/product_metrics/web/base/1.5.0"} <= {r.id for r in results}
    # The checkout's 1.3.0 comes first; the built-in copy is shadowed.
    assert repo.get("/analytics/product_metrics/web/base/1.3.0").location.endswith(".yaml")


def test_wikimedia_layout_yaml_links_and_no_current_or_latest(tmp_path: Path) -> None:
    repo = SchemaRepository.with_directory(wikimedia_layout(tmp_path))
    schema = repo.get(f"https://schema.example.org/repositories/secondary/jsonschema/{TITLE}/1.0.0")
    assert schema.location == f"{TITLE}/1.0.0.yaml"
    schema.validate({"$schema": f"/{TITLE}/1.0.0", "meta": {}, "clicked": True})
    for alias in ("latest", "current"):
        with pytest.raises(InvalidEventError, match="not a schema id"):
            repo.get(f"/{TITLE}/{alias}")
    assert [r.id for r in repo.check() if r.id.startswith("/analytics/acme")] == [
        f"/{TITLE}/1.0.0"]


@pytest.mark.parametrize(("name", "content"), [
    ("2.0.0", json.dumps(button_schema("2.0.0"))),
    ("2.0.0", as_yaml(button_schema("2.0.0"))),
    ("2.0.0.json", json.dumps(button_schema("2.0.0"))),
    ("2.0.0.yml", as_yaml(button_schema("2.0.0"))),
])
def test_bare_json_and_yaml_files(tmp_path: Path, name: str, content: str) -> None:
    folder = tmp_path / TITLE
    folder.mkdir(parents=True)
    (folder / name).write_text(content)
    assert SchemaRepository.with_directory(tmp_path).get(f"/{TITLE}/2.0.0").title == TITLE


def test_yaml_dates_stay_strings(tmp_path: Path) -> None:
    folder = tmp_path / TITLE
    folder.mkdir(parents=True)
    document = button_schema("1.0.0")
    text = as_yaml(document) + "\n"
    (folder / "1.0.0.yaml").write_text(text.replace('"type": "object",',
                                                    '"type": "object", "examples": '
                                                    '[{"dt": 2021-01-01T00:00:00Z}],'))
    repo = SchemaRepository.with_directory(tmp_path)
    assert repo.check()[0].error == ""


def test_a_new_version_validates_on_first_use_without_a_restart(tmp_path: Path) -> None:
    repo = SchemaRepository.with_directory(wikimedia_layout(tmp_path))
    event = {"$schema": f"/{TITLE}/1.1.0", "meta": {}, "colour": "red"}
    with pytest.raises(InvalidEventError, match="schema not found"):
        repo.get(event["$schema"])
    (tmp_path / "jsonschema" / TITLE / "1.1.0.yaml").write_text(
        as_yaml(button_schema("1.1.0", {"colour": {"type": "string"}})))
    repo.get(event["$schema"]).validate(event)
    assert [s.id for s in repo.loaded()] == [f"/{TITLE}/1.1.0"]


def test_refs_to_fragments_resolve_in_the_repository_never_on_the_network(
        tmp_path: Path) -> None:
    fragment = tmp_path / "fragment" / "acme" / "common"
    fragment.mkdir(parents=True)
    (fragment / "1.0.0.yaml").write_text(as_yaml(
        {"$id": "/fragment/acme/common/1.0.0", "type": "object",
         "properties": {"dt": {"type": "string", "format": "date-time"}}}))
    folder = tmp_path / TITLE
    folder.mkdir(parents=True)
    (folder / "1.0.0.json").write_text(json.dumps(
        {"$id": f"/{TITLE}/1.0.0", "title": TITLE,
         "allOf": [{"$ref": "/fragment/acme/common/1.0.0#"}]}))
    (folder / "2.0.0.json").write_text(json.dumps(
        {"$id": f"/{TITLE}/2.0.0", "title": TITLE,
         "allOf": [{"$ref": "https://203.0.113.9/jsonschema/fragment/acme/missing/1.0.0"}]}))
    repo = SchemaRepository.with_directory(tmp_path)
    schema = repo.get(f"/{TITLE}/1.0.0")
    schema.validate({"dt": "2026-01-01T00:00:00Z"})
    with pytest.raises(InvalidEventError, match="dt"):
        schema.validate({"dt": "not a time"})
    with pytest.raises(InvalidEventError, match="cannot be compiled"):
        repo.get(f"/{TITLE}/2.0.0")


def outside_setup(tmp_path: Path) -> tuple[Path, Path]:
    """A repository, and next to it a folder with a schema that would accept anything."""
    repo = tmp_path / "repo"
    wikimedia_layout(repo)
    outside = tmp_path / "outside" / "acme" / "button"
    outside.mkdir(parents=True)
    # each with the $id it would be loaded under, so only the guard can refuse it
    for version, schema_id in (("6.6.6", f"/{TITLE}/6.6.6"),
                               ("7.7.7", "/analytics/linked/acme/button/7.7.7")):
        permissive = {"$id": schema_id, "title": TITLE}
        (outside / f"{version}.json").write_text(json.dumps(permissive))
    inside = repo / "jsonschema" / TITLE
    os.symlink(outside / "6.6.6.json", inside / "6.6.6.json")  # a file link out
    os.symlink(tmp_path / "outside", repo / "jsonschema" / "analytics" / "linked")  # a folder
    return repo, tmp_path / "outside"


TRAVERSALS = [
    "/../outside/acme/button/6.6.6", "../outside/acme/button/6.6.6",
    f"/{TITLE}/../../../../outside/acme/button/6.6.6",
    "/%2e%2e/outside/acme/button/6.6.6", "/%252e%252e/outside/acme/button/6.6.6",
    "/analytics%2f..%2f..%2foutside/acme/button/6.6.6", "/..%5c..%5coutside/acme/button/6.6.6",
    "\\..\\outside\\acme\\button\\6.6.6", "file:///outside/acme/button/6.6.6",
    "https://example.org/jsonschema/../../outside/acme/button/6.6.6",
    "/./analytics/acme/button/6.6.6", "//outside/acme/button/6.6.6",
    f"/{TITLE}/6.6.6\n", f"/{TITLE}/6.6.6", "/analytics/linked/acme/button/7.7.7",
]


@pytest.mark.parametrize("uri", TRAVERSALS)
def test_nothing_outside_the_directory_is_ever_loaded(tmp_path: Path, uri: str) -> None:
    root, outside = outside_setup(tmp_path)
    uri = uri.replace("/outside", f"{outside}") if uri.startswith("file:") else uri
    repo = SchemaRepository.with_directory(root)
    with pytest.raises(InvalidEventError) as refused:
        repo.get(uri)
    assert "schema" in str(refused.value)
    assert repo.loaded() == []


def test_an_absolute_path_is_an_id_under_the_directory(tmp_path: Path) -> None:
    root, outside = outside_setup(tmp_path)
    repo = SchemaRepository.with_directory(root)
    with pytest.raises(InvalidEventError, match="schema not found"):
        repo.get(f"{outside}/acme/button/7.7.7")
    assert repo.loaded() == []


def test_check_reports_links_out_and_the_cli_exits_1(tmp_path: Path) -> None:
    root, _ = outside_setup(tmp_path)
    results = {r.id: r for r in SchemaRepository.with_directory(root).check()}
    assert "leads out" in results[f"/{TITLE}/6.6.6"].error
    assert not any(i.startswith("/analytics/linked") for i in results)
    runner = CliRunner()
    listed = runner.invoke(app, ["schemas", "list", "--json", "--schemas", str(root)])
    assert listed.exit_code == 0
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows[f"/{TITLE}/1.0.0"]["location"] == f"{TITLE}/1.0.0.yaml"
    assert rows["/analytics/product_metrics/web/base/2.1.0"]["location"] == "built-in"
    checked = runner.invoke(app, ["schemas", "check", "--json", "--schemas", str(root)])
    assert checked.exit_code == 1
    assert [row["id"] for row in json.loads(checked.stdout)] == [f"/{TITLE}/6.6.6"]
    (root / "jsonschema" / TITLE / "6.6.6.json").unlink()
    assert runner.invoke(app, ["schemas", "check", "--schemas", str(root)]).exit_code == 0


def test_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        SchemaRepository.with_directory(tmp_path / "nope")
