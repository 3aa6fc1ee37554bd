"""The simulator with ``sl-v2`` rows: per-site weighted splits, gates and targeting go through the
core, and the analysis of the simulated traffic (the split read from the row) is not flagged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from splitlab.analysis.analyze import Options, Report, analyze
from splitlab.analysis.engines import DuckDBEngine
from splitlab.analysis.materialize import materialize
from splitlab.analysis.srm import ConfiguredSplit, sample_ratio_mismatch
from splitlab.cli import app
from splitlab.core.model import Experiment
from splitlab.core.resolution import resolve
from splitlab.simulate import Simulation, simulate, sites_of, write_events

ROW: dict[str, Any] = {
    "name": "weighted-simulation", "groups": ["control", "treatment", "other"],
    "algorithm": "sl-v2", "user_identifier_type": "mw-user",
    "traffic_split": {"default": {"control": 10, "treatment": 10},
                      "enwiki": {"control": 5, "treatment": 15, "other": 30},
                      "eswiki": {"control": 1.5, "treatment": 0.5, "other": 8}},
    "holdouts": [{"name": "long-term-2026", "percent": 5}],
    "layer": {"name": "reading", "range": [0, 80000]},
}
RATIOS = {"enwiki": (1, 3, 6), "eswiki": (3, 1, 16)}  # every other site: default 1 : 1 : 0


def run(tmp_path: Path, experiment: Experiment, units: int) -> tuple[Report, Path]:
    events = tmp_path / "events.parquet"
    write_events(simulate(Simulation(experiment, units, seed=7)), events)
    materialize(events, tmp_path / "data")
    engine = DuckDBEngine(threads=1)
    engine.load_events(tmp_path / "data")
    try:
        return analyze(engine, Options.of(experiment)), events
    finally:
        engine.close()


def test_a_weighted_per_site_simulation_is_not_flagged(tmp_path: Path) -> None:
    experiment = Experiment.from_config(ROW)
    report, events = run(tmp_path, experiment, 60_000)
    assert report.srm.p_value is not None and not report.srm.flagged, report.srm
    assert set(report.by_site) == {"enwiki", "dewiki", "frwiki", "jawiki", "eswiki"}
    for site, counts in report.by_site.items():  # each site follows its own split
        ratios = RATIOS.get(site, (1, 1, 0))
        pairs = list(zip(experiment.groups, ratios, strict=True))
        observed = [counts.get(g, 0) for g, r in pairs if r]
        expected = [sum(observed) * r / sum(ratios) for r in ratios if r]
        assert scipy_stats.chisquare(observed, expected).pvalue > 0.001, (site, counts)
        assert all(counts.get(g, 0) == 0 for g, r in pairs if not r)
    # The default split alone cannot explain the same units.
    default_only = ConfiguredSplit(experiment.groups, {"default": (1.0, 1.0, 0.0)})
    assert sample_ratio_mismatch(list(report.groups), report.by_site, default_only,
                                 0.001).flagged
    rows = pq.read_table(events, columns=["action", "performer", "mediawiki",
                                          "experiment"]).to_pylist()
    enrollments = [r for r in rows if r["action"] == "experiment_enrollment"]
    for row in enrollments[:: len(enrollments) // 400]:  # the core's answer, gates included
        truth = resolve(row["performer"]["id"], experiment, row["mediawiki"]["database"])
        assert truth.enrolled and truth.group == row["experiment"]["assigned"]
        assert truth.subject_id == row["experiment"]["subject_id"]


def test_targeted_units_see_their_site_and_login(tmp_path: Path) -> None:
    experiment = Experiment.from_config({
        **ROW, "targeting": {"site": {"$in": ["enwiki", "eswiki"]}, "is_logged_in": True}})
    report, _ = run(tmp_path, experiment, 20_000)
    assert set(report.by_site) == {"enwiki", "eswiki"}
    assert not report.srm.flagged
    logged_out = Experiment.from_config({**ROW, "targeting": {"is_logged_in": False}})
    assert sum(t.num_rows for t in simulate(Simulation(logged_out, 5_000, seed=7))) == 0


def test_configured_sites_get_traffic_and_tk_v1_keeps_its_sites() -> None:
    names, shares = sites_of(Experiment.from_config(ROW))
    assert names == ("enwiki", "dewiki", "frwiki", "jawiki", "eswiki")
    assert abs(sum(shares) - 1) < 1e-12
    plain = Experiment.from_config({"name": "plain-simulation", "groups": ["a", "b"],
                                    "sample_rate": {"default": 1},
                                    "user_identifier_type": "mw-user"})
    assert sites_of(plain) == (("enwiki", "dewiki", "frwiki", "jawiki"), (0.5, 0.2, 0.2, 0.1))


def test_cli_simulate_then_analyze_with_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps([ROW]))
    events = tmp_path / "events.parquet"
    runner = CliRunner()
    made = runner.invoke(app, ["simulate", "--config", str(config), "--experiment", ROW["name"],
                               "--users", "20000", "--output", str(events)])
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["analyze", "--experiment", ROW["name"], "--events",
                                 str(events), "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    srm = json.loads(result.stdout)["srm"]
    assert srm["flagged"] is False and srm["p_value"] > 0.001
