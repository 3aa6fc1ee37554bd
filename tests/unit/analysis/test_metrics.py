"""The metrics catalog: valid entries parse, invalid ones name the metric and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitlab.analysis.metrics import Aggregate, load_catalog, parse_catalog
from splitlab.errors import AnalysisError

EXAMPLE = Path(__file__).parents[3] / "examples" / "metrics.yaml"


def test_the_example_catalog_parses() -> None:
    metrics = {m.name: m for m in load_catalog(EXAMPLE)}
    clicks = metrics["clicks_per_unit"]
    assert clicks.outcome == Aggregate("count", (("action", ("click",)),))
    assert clicks.covariate == Aggregate("count", (("action", ("click",)),), pre_days=14)
    assert clicks.tau == 0.05
    ratio = metrics["value_per_click"]
    assert ratio.outcome is not None and ratio.outcome.kind == "sum"
    assert ratio.denominator == Aggregate("count", (("action", ("click",)),))
    assert metrics["exposures_per_unit"].sql is not None


def test_sequential_without_tau_uses_the_default() -> None:
    [metric] = parse_catalog([{"name": "m", "kind": "count", "sequential": {}}])
    assert metric.tau == 0.05
    [plain] = parse_catalog([{"name": "m", "kind": "count"}])
    assert plain.tau == 0.0


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "m", "kind": "median"}, "metric 'm': kind must be one of"),
        ({"name": "m", "kind": "count", "filter": {"performer_id": 1}}, "cannot filter on"),
        ({"name": "m", "kind": "count", "filter": {"action": []}}, "needs a value"),
        ({"name": "m", "kind": "sql"}, "needs a sql template"),
        ({"name": "m", "kind": "ratio", "numerator": {"kind": "count"}}, "denominator must be"),
        ({"name": "m", "kind": "ratio", "numerator": {"kind": "count"},
          "denominator": {"kind": "count"}, "cuped": {"pre_days": 7}}, "cuped is not available"),
        ({"name": "m", "kind": "count", "cuped": {"pre_days": 1.5}}, "whole number"),
        ({"name": "m", "kind": "count", "sequential": {"tau": -1}}, "non-negative"),
        ({"kind": "count"}, r"metrics\[0\]\.name"),
    ],
)
def test_invalid_entries_are_named(entry: dict[str, object], message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        parse_catalog({"metrics": [entry]})


def test_duplicate_names_and_bad_documents() -> None:
    with pytest.raises(AnalysisError, match="defined twice"):
        parse_catalog([{"name": "m", "kind": "count"}, {"name": "m", "kind": "sum"}])
    with pytest.raises(AnalysisError, match="a metrics catalog is"):
        parse_catalog({"metric": []})


def test_unreadable_catalog(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("metrics: [unclosed")
    with pytest.raises(AnalysisError, match="not valid YAML"):
        load_catalog(bad)
    with pytest.raises(AnalysisError, match="cannot read"):
        load_catalog(tmp_path / "missing.yaml")
