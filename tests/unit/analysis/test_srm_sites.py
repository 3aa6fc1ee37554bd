"""SRM against the split the experiment's row configures on each unit's site, checked against
``scipy.stats.chisquare`` with expected counts computed here by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from splitlab.analysis.analyze import Options, analyze
from splitlab.analysis.engines import DuckDBEngine
from splitlab.analysis.materialize import materialize
from splitlab.analysis.srm import ConfiguredSplit, sample_ratio_mismatch
from splitlab.cli import app
from splitlab.core.model import Experiment
from tests.unit.analysis.conftest import write

EXPERIMENT = "weighted-sites-experiment"
ROW: dict[str, Any] = {
    "name": EXPERIMENT, "groups": ["control", "treatment", "other"], "algorithm": "sl-v2",
    "user_identifier_type": "mw-user",
    "traffic_split": {"default": {"control": 25, "treatment": 25},
                      "enwiki": {"control": 10, "treatment": 30, "other": 20},
                      "jawiki": {"control": 0.5, "treatment": 0.5, "other": 9}},
}


def units(site: str | None, group: str, count: int) -> list[dict[str, Any]]:
    return [{
        "$schema": "/analytics/product_metrics/web/base/2.1.0",
        "meta": {"id": f"{site}-{group}-{i}", "stream": "product_metrics.web_base"},
        "dt": "2026-11-01T00:00:00Z", "action": "experiment_enrollment",
        **({"mediawiki": {"database": site}} if site else {}),
        "experiment": {"enrolled": EXPERIMENT, "assigned": group,
                       "subject_id": f"{site}-{group}-{i}", "sampling_unit": "mw-user"},
    } for i in range(count)]


def run(engine: DuckDBEngine, tmp_path: Path, rows: list[dict[str, Any]]) -> Any:
    materialize(write(tmp_path, rows), tmp_path / "data")
    engine.load_events(tmp_path / "data")
    return analyze(engine, Options.of(Experiment.from_config(ROW)))


COUNTS = {  # site → (control, treatment, other)
    "enwiki": (95, 310, 190),   # 1 : 3 : 2
    "dewiki": (205, 195, 0),    # default 1 : 1 : 0
    "jawiki": (9, 4, 87),       # 1 : 1 : 18
    None: (40, 44, 0),          # no site: default
}


def by_hand() -> tuple[list[int], list[float]]:
    ratios = {"enwiki": (1, 3, 2), "dewiki": (1, 1, 0), "jawiki": (1, 1, 18), None: (1, 1, 0)}
    observed = [sum(c[g] for c in COUNTS.values()) for g in range(3)]
    expected = [sum(sum(COUNTS[s]) * ratios[s][g] / sum(ratios[s]) for s in COUNTS)
                for g in range(3)]
    return observed, expected


def test_expected_counts_sum_each_sites_units_times_its_weights(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    rows = [e for site, counts in COUNTS.items()
            for group, n in zip(("control", "treatment", "other"), counts, strict=True)
            for e in units(site, group, n)]
    report = run(engine, tmp_path, rows)
    observed, expected = by_hand()
    oracle = scipy_stats.chisquare(observed, expected)
    assert list(report.srm.observed_units.values()) == observed
    assert list(report.srm.expected_units.values()) == pytest.approx(expected, rel=1e-12)
    assert report.srm.statistic == pytest.approx(oracle.statistic, rel=1e-9)
    assert report.srm.p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    assert report.srm.df == 2
    assert not report.srm.flagged  # the counts follow each site's split


def test_the_default_split_alone_would_flag_what_the_sites_explain(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    """Exact per-site splits: X² is 0; against the default split alone it is a mismatch."""
    rows = (units("enwiki", "control", 100) + units("enwiki", "treatment", 300)
            + units("enwiki", "other", 200) + units("dewiki", "control", 150)
            + units("dewiki", "treatment", 150))
    report = run(engine, tmp_path, rows)
    assert report.srm.expected_units == pytest.approx(
        {"control": 250.0, "treatment": 450.0, "other": 200.0})
    assert report.srm.statistic == pytest.approx(0.0, abs=1e-12)
    only_default = ConfiguredSplit(("control", "treatment", "other"),
                                   {"default": (25.0, 25.0, 0.0)})
    assert sample_ratio_mismatch(list(report.groups), report.by_site, only_default,
                                 0.001).flagged


def test_units_where_their_site_gives_their_group_no_share_are_a_mismatch(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    # "other" holds 20 % on enwiki but 0 % on dewiki (the default): one unit there is enough.
    rows = (units("enwiki", "control", 50) + units("enwiki", "treatment", 150)
            + units("enwiki", "other", 100) + units("dewiki", "other", 1))
    report = run(engine, tmp_path, rows)
    assert report.srm.flagged and report.srm.p_value == 0.0
    assert report.srm.statistic is not None and math.isinf(report.srm.statistic)


def test_a_site_without_an_entry_and_no_default_is_a_mismatch() -> None:
    split = ConfiguredSplit.of(Experiment.from_config(
        {**ROW, "traffic_split": {"enwiki": {"control": 50, "treatment": 50}}}))
    fine = sample_ratio_mismatch(["control", "treatment", "other"],
                                 {"enwiki": {"control": 52, "treatment": 48}}, split, 0.001)
    assert not fine.flagged and fine.p_value == pytest.approx(
        scipy_stats.chisquare([52, 48]).pvalue)
    stray = sample_ratio_mismatch(["control", "treatment", "other"],
                                  {"enwiki": {"control": 52, "treatment": 48},
                                   "dewiki": {"control": 1}}, split, 0.001)
    assert stray.flagged and stray.p_value == 0.0


def test_tk_v1_rows_expect_equal_groups_on_every_site() -> None:
    split = ConfiguredSplit.of(Experiment.from_config({
        "name": EXPERIMENT, "groups": ["a", "b", "c"], "user_identifier_type": "mw-user",
        "sample_rate": {"default": 0.1, "1": ["dewiki"]}}))
    test = sample_ratio_mismatch(["a", "b", "c"], {"enwiki": {"a": 30, "b": 35, "c": 20},
                                                   "dewiki": {"a": 300, "b": 290, "c": 310}},
                                 split, 0.001)
    oracle = scipy_stats.chisquare([330, 325, 330])
    assert test.statistic == pytest.approx(oracle.statistic)
    assert test.p_value == pytest.approx(oracle.pvalue)


def test_the_cli_reads_the_split_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps([ROW]))
    rows = [e for site, counts in COUNTS.items()
            for group, n in zip(("control", "treatment", "other"), counts, strict=True)
            for e in units(site, group, n)]
    result = CliRunner().invoke(app, ["analyze", "--experiment", EXPERIMENT, "--events",
                                      str(write(tmp_path, rows)), "--config", str(config),
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    srm = json.loads(result.stdout)["srm"]
    observed, expected = by_hand()
    assert srm["p_value"] == pytest.approx(scipy_stats.chisquare(observed, expected).pvalue)
    refused = CliRunner().invoke(app, ["analyze", "--experiment", EXPERIMENT, "--events",
                                       str(tmp_path / "events.jsonl"), "--weights", "1,1,1"])
    assert refused.exit_code == 2 and "--weights" in refused.output
