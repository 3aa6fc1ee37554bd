"""Stream configuration: the default catalog and config files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from splitlab.errors import ConfigError
from splitlab.intake.streams import catalog_from_document, default_catalog, load_catalog

WEB = "analytics/product_metrics/web/base"


def test_default_catalog_has_the_test_kitchen_streams_without_user_agents() -> None:
    catalog = default_catalog()
    for name in ("product_metrics.web_base", "product_metrics.experiment_enrollment"):
        stream = catalog.get(name)
        assert stream is not None
        assert stream.schema_title == WEB
        assert stream.keep_user_agent is False
    assert catalog.error.schema_title == "error"
    assert catalog.get("nope") is None


def test_config_file_json_and_yaml(tmp_path: Path) -> None:
    document = {"error_stream": "errs", "streams": {
        "errs": {"schema_title": "error"},
        "app.clicks": {"schema_title": WEB, "keep_user_agent": True, "sink": "sqlite"}}}
    (tmp_path / "s.json").write_text(json.dumps(document))
    (tmp_path / "s.yaml").write_text(
        "error_stream: errs\nstreams:\n  errs: {schema_title: error}\n"
        f"  app.clicks: {{schema_title: {WEB}, keep_user_agent: true, sink: sqlite}}\n")
    for name in ("s.json", "s.yaml"):
        catalog = load_catalog(tmp_path / name)
        clicks = catalog.get("app.clicks")
        assert clicks is not None and clicks.keep_user_agent and clicks.sink == "sqlite"
        assert catalog.sinks == {"default", "sqlite"}


@pytest.mark.parametrize(("document", "field"), [
    ([], ""),
    ({"streams": {}}, "streams"),
    ({"streams": {"a": {"schema_title": WEB}}}, "error_stream"),
    ({"error_stream": "a", "streams": {"a": {"schema_title": WEB}}}, "error_stream"),
    ({"streams": {"a": {"schema_title": ""}}}, "streams.a.schema_title"),
    ({"streams": {"a": {"schema_title": WEB, "keep_user_agent": "yes"}}},
     "streams.a.keep_user_agent"),
    ({"streams": {"a": {"schema_title": WEB, "sink": "kafka"}}}, "streams.a.sink"),
    ({"streams": {"a": {"schema_title": WEB, "colour": 1}}}, "streams.a"),
    ({"streams": {"bad name": {"schema_title": WEB}}}, "streams"),
])
def test_bad_config_names_the_field(document: object, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        catalog_from_document(document)
    assert caught.value.field == field


def test_unreadable_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalog(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load_catalog(tmp_path / "bad.json")
