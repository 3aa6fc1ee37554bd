"""A metric that cannot be computed carries its own error; the rest of the report stands.

Numbers are checked against ``scipy.stats`` on the per-unit outcomes written into the events.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from splitlab.analysis import report as render
from splitlab.analysis.analyze import Options, Report, analyze
from splitlab.analysis.engines import DuckDBEngine
from splitlab.analysis.materialize import materialize
from splitlab.analysis.metrics import parse_catalog
from splitlab.analysis.srm import ConfiguredSplit
from splitlab.cli import app
from tests.unit.analysis.conftest import write

EXPERIMENT = "robust-experiment"
DAY = "2026-11-01T00:00:00Z"
LATER = "2026-11-01T01:00:00Z"
CONTROL_ONLY = ConfiguredSplit(("control", "treatment"), {"default": (100.0, 0.0)})


def event(subject: str, group: str, action: str, dt: str = DAY, **extra: Any) -> dict[str, Any]:
    return {
        "$schema": "/analytics/product_metrics/web/base/2.1.0",
        "meta": {"id": f"{subject}-{action}-{dt}-{extra.get('action_context')}",
                 "stream": "product_metrics.web_base"},
        "dt": dt, "action": action, "mediawiki": {"database": "enwiki"},
        "experiment": {"enrolled": EXPERIMENT, "assigned": group, "subject_id": subject,
                       "sampling_unit": "mw-user"},
        **extra,
    }


def units(group: str, clicks: list[int], prefix: str = "") -> list[dict[str, Any]]:
    """One unit per entry of ``clicks``, enrolled in ``group``, with that many clicks."""
    rows = []
    for i, count in enumerate(clicks):
        subject = f"{prefix or group}-{i}"
        rows.append(event(subject, group, "experiment_enrollment"))
        rows += [event(subject, group, "click", LATER, action_context=str(k))
                 for k in range(count)]
    return rows


def run(engine: DuckDBEngine, tmp_path: Path, rows: list[dict[str, Any]],
        catalog: list[dict[str, Any]], options: Options | None = None) -> Report:
    materialize(write(tmp_path, rows), tmp_path / "data")
    engine.load_events(tmp_path / "data")
    return analyze(engine, options or Options(EXPERIMENT, ("control", "treatment")),
                   parse_catalog(catalog))


CLICKS = {"name": "clicks", "kind": "count", "filter": {"action": "click"}}
SEQUENTIAL = {"name": "clicks_seq", "kind": "count", "filter": {"action": "click"},
              "sequential": {"tau": 0.05}}
EDITS_PER_CLICK = {"name": "edits_per_click", "kind": "ratio",
                   "numerator": {"kind": "count", "filter": {"action": "edit_saved"}},
                   "denominator": {"kind": "count", "filter": {"action": "click"}}}


def test_a_sequential_metric_with_a_zero_control_mean_does_not_abort(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    control, treatment = [0] * 12, [0, 1, 2, 0, 3, 1, 0, 2, 1, 1]
    report = run(engine, tmp_path, units("control", control) + units("treatment", treatment),
                 [SEQUENTIAL, CLICKS])
    sequential, plain = report.metrics
    assert sequential.error is not None and "control" in sequential.error
    assert "mean is 0" in sequential.error
    assert plain.error is None
    welch = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    for metric in (sequential, plain):  # the fixed-horizon test is still reported
        effect = metric.groups[1]
        assert effect.effect == pytest.approx(sum(treatment) / len(treatment))
        assert effect.p_value == pytest.approx(welch.pvalue, rel=1e-9)
    assert sequential.groups[1].sequential_p_value is None
    assert report.srm.p_value == pytest.approx(
        scipy_stats.chisquare([12, 10]).pvalue, rel=1e-12)


@pytest.mark.parametrize("empty", ["control", "treatment"])
def test_a_zero_denominator_names_the_group_that_has_it(
    engine: DuckDBEngine, tmp_path: Path, empty: str
) -> None:
    full = "treatment" if empty == "control" else "control"
    clicks = [1, 2, 3, 1, 2]
    rows = units(empty, [0] * 5) + units(full, clicks)
    rows += [event(f"{full}-{i}", full, "edit_saved", LATER) for i in range(3)]
    report = run(engine, tmp_path, rows, [EDITS_PER_CLICK, CLICKS])
    ratio, plain = report.metrics
    assert ratio.error is not None
    assert f"'{empty}'" in ratio.error and f"'{full}'" not in ratio.error
    assert "zero denominator" in ratio.error
    assert all(g.p_value is None for g in ratio.groups)
    control_clicks = clicks if full == "control" else [0] * 5
    treatment_clicks = clicks if full == "treatment" else [0] * 5
    welch = scipy_stats.ttest_ind(treatment_clicks, control_clicks, equal_var=False)
    assert plain.error is None
    assert plain.groups[1].p_value == pytest.approx(welch.pvalue, rel=1e-9)
    document = json.loads(render.to_json(report))
    assert document["metrics"][0]["error"] == ratio.error
    assert document["metrics"][1]["error"] is None
    assert document["srm"]["p_value"] == pytest.approx(1.0)
    assert ratio.error in render.to_text(report)
    assert "zero denominator" in render.to_html(report)


def test_a_group_with_one_unit_spoils_only_its_own_comparison(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    control, treatment = [1, 0, 2, 1, 3, 0, 1], [2, 1, 3, 2, 2, 4]
    rows = units("control", control) + units("treatment", treatment) + units("lonely", [5])
    options = Options(EXPERIMENT, ("control", "treatment", "lonely"))
    [metric] = run(engine, tmp_path, rows, [CLICKS], options).metrics
    assert metric.error is not None and "'lonely'" in metric.error and "1 unit" in metric.error
    by_group = {g.group: g for g in metric.groups}
    assert by_group["lonely"].n == 1 and by_group["lonely"].mean == 5
    assert by_group["lonely"].p_value is None
    welch = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    assert by_group["treatment"].p_value == pytest.approx(welch.pvalue, rel=1e-9)
    assert by_group["treatment"].p_value_adjusted == pytest.approx(welch.pvalue, rel=1e-9)


def test_the_cli_reports_a_metric_error_and_everything_else(tmp_path: Path) -> None:
    rows = units("control", [0] * 6) + units("treatment", [1, 2, 0, 1])
    catalog = tmp_path / "metrics.yaml"
    catalog.write_text(json.dumps({"metrics": [SEQUENTIAL, EDITS_PER_CLICK, CLICKS]}))
    arguments = ["analyze", "--experiment", EXPERIMENT, "--events", str(write(tmp_path, rows)),
                 "--metrics", str(catalog)]
    result = CliRunner().invoke(app, [*arguments, "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    errors = [m["error"] for m in document["metrics"]]
    assert errors[0] and errors[1] and errors[2] is None
    assert document["srm"]["p_value"] == pytest.approx(scipy_stats.chisquare([6, 4]).pvalue)
    table = CliRunner().invoke(app, arguments)
    assert table.exit_code == 0, table.output
    assert "SRM: chi-square" in table.stdout and "error:" in table.stdout


def test_units_in_a_zero_share_group_are_a_mismatch(engine: DuckDBEngine,
                                                     tmp_path: Path) -> None:
    rows = units("control", [0] * 20) + units("treatment", [0] * 3)
    report = run(engine, tmp_path, rows, [],
                 Options(EXPERIMENT, ("control", "treatment"), CONTROL_ONLY))
    assert report.srm.flagged
    assert report.srm.p_value == 0.0
    assert report.srm.statistic is not None and math.isinf(report.srm.statistic)
    assert report.srm.expected_units == {"control": 23.0, "treatment": 0.0}
    text = render.to_text(report)
    assert "SAMPLE RATIO MISMATCH" in text and "--config" not in text


def test_one_positive_share_and_no_stray_units_says_why_it_is_not_tested(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    rows = units("control", [0] * 20)
    report = run(engine, tmp_path, rows, [],
                 Options(EXPERIMENT, ("control", "treatment"), CONTROL_ONLY))
    assert not report.srm.flagged and report.srm.p_value is None
    assert report.srm.note is not None and "'control'" in report.srm.note
    text = render.to_text(report)
    assert report.srm.note in text and "--config" not in text
    unconfigured = analyze(engine, Options(EXPERIMENT))
    assert unconfigured.srm.note is not None and "--config" in unconfigured.srm.note


def test_an_empty_input_is_named_not_a_temporary_directory(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from splitlab.analysis.table import EVENT_SCHEMA

    empty = tmp_path / "empty.parquet"
    pq.write_table(EVENT_SCHEMA.empty_table(), empty)
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", "--experiment", EXPERIMENT, "--events", str(empty)])
    assert result.exit_code == 2
    assert f"no events in {empty}" in result.output
    assert "splitlab-analyze-" not in result.output and "materialize" not in result.output
    done = runner.invoke(app, ["materialize", "--events", str(empty), "--output",
                               str(tmp_path / "d")])
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["analyze", "--experiment", EXPERIMENT, "--data-dir",
                                str(tmp_path / "d")])
    assert again.exit_code == 2
    assert f"no events under {tmp_path / 'd'}" in again.output
    assert "run `splitlab materialize`" not in again.output


def test_units_of_a_row_that_gives_every_group_0_percent_are_a_mismatch(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps([{"name": EXPERIMENT, "groups": ["control", "treatment"],
                                   "algorithm": "sl-v2", "user_identifier_type": "mw-user",
                                   "traffic_split": {"default": {"control": 0,
                                                                 "treatment": 0}}}]))
    events = write(tmp_path, units("control", [0] * 3))
    result = CliRunner().invoke(app, ["analyze", "--experiment", EXPERIMENT, "--events",
                                      str(events), "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    srm = json.loads(result.stdout)["srm"]
    assert srm["flagged"] and srm["p_value"] == 0.0 and srm["statistic"] is None
