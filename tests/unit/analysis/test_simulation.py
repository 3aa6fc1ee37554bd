"""The simulator end to end on DuckDB: real tk-v1 groups, SRM on faults, and a pandas oracle."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from splitlab.analysis.analyze import Options, Report, analyze
from splitlab.analysis.engines import DuckDBEngine
from splitlab.analysis.materialize import materialize
from splitlab.analysis.metrics import parse_catalog
from splitlab.cli import app
from splitlab.core.assignment import assign
from splitlab.core.model import Experiment
from splitlab.simulate import Fault, Simulation, simulate, write_events
from tests.unit.analysis.pandas_oracle import analyse as oracle_analyse
from tests.unit.analysis.pandas_oracle import load as oracle_load

EXPERIMENT = Experiment.from_config({
    "name": "simulated-checkout", "groups": ["control", "treatment"],
    "sample_rate": {"default": 0.5, "1": ["dewiki"]}, "user_identifier_type": "mw-user",
})
METRICS = parse_catalog({"metrics": [
    {"name": "clicks", "kind": "count", "filter": {"action": "click"}},
    {"name": "edited", "kind": "proportion", "filter": {"action": "edit_saved"}},
]})


def run(tmp_path: Path, spec: Simulation) -> tuple[Report, Path]:
    events = tmp_path / "events.parquet"
    write_events(simulate(spec), events)
    materialize(events, tmp_path / "data")
    engine = DuckDBEngine(threads=1)
    engine.load_events(tmp_path / "data")
    try:
        return analyze(engine, Options(EXPERIMENT.name, EXPERIMENT.groups), METRICS), events
    finally:
        engine.close()


def test_simulated_groups_are_the_core_assignment(tmp_path: Path) -> None:
    events = tmp_path / "e.parquet"
    write_events(simulate(Simulation(EXPERIMENT, 3000, seed=1)), events)
    table = pq.read_table(events).to_pylist()
    checked = 0
    for row in table[:: max(1, len(table) // 300)]:
        truth = assign(row["performer"]["id"], EXPERIMENT, row["mediawiki"]["database"])
        assert truth.in_sample
        assert row["experiment"]["subject_id"] == truth.subject_id
        if row["action"] != "experiment_enrollment" or row["experiment"]["assigned"] == truth.group:
            checked += 1
            assert row["experiment"]["assigned"] == truth.group
    assert checked > 250


def test_the_simulator_is_seeded() -> None:
    first = next(simulate(Simulation(EXPERIMENT, 500, seed=4)))
    again = next(simulate(Simulation(EXPERIMENT, 500, seed=4)))
    other = next(simulate(Simulation(EXPERIMENT, 500, seed=5)))
    assert first.equals(again)
    assert not first.equals(other)


def test_healthy_run_is_not_flagged_and_agrees_with_pandas(tmp_path: Path) -> None:
    spec = Simulation(EXPERIMENT, 20_000, seed=3, lifts={"treatment": 1.1}, mixed_share=0.01)
    report, _ = run(tmp_path, spec)
    assert not report.srm.flagged
    oracle = oracle_analyse(oracle_load(tmp_path / "data"), EXPERIMENT.name)
    assert report.groups == oracle["groups"]
    assert report.units_in_multiple_groups == oracle["units_in_multiple_groups"] > 0
    assert report.srm.p_value == pytest.approx(oracle["srm_p_value"], rel=1e-9)
    for metric, name in zip(report.metrics, ("clicks", "edited"), strict=True):
        for group in metric.groups:
            expected = oracle["metrics"][name][group.group]
            assert group.n == expected["n"]
            assert group.mean == pytest.approx(expected["mean"], rel=1e-12)
            if group.p_value is not None:
                assert group.effect == pytest.approx(expected["effect"], rel=1e-9)
                assert group.p_value == pytest.approx(expected["p_value"], rel=1e-6)


def test_lost_enrollments_are_flagged(tmp_path: Path) -> None:
    spec = Simulation(EXPERIMENT, 20_000, seed=3, fault=Fault("treatment", 0.1))
    report, _ = run(tmp_path, spec)
    assert report.srm.flagged
    assert report.srm.p_value is not None and report.srm.p_value < report.srm.alpha
    assert report.srm.observed["treatment"] < 0.48


def test_cli_simulate_analyze_json_and_html(tmp_path: Path) -> None:
    runner = CliRunner()
    events = tmp_path / "events.jsonl"
    made = runner.invoke(app, ["simulate", "--output", str(events), "--units", "2000",
                               "--experiment", "cli-experiment", "--lift", "treatment=1.2"])
    assert made.exit_code == 0, made.output
    catalog = Path(__file__).parents[3] / "examples" / "metrics.yaml"
    result = runner.invoke(app, ["analyze", "--experiment", "cli-experiment", "--events",
                                 str(events), "--metrics", str(catalog), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["groups"]) == {"control", "treatment"}
    assert {"p_value", "flagged", "observed", "expected"} <= set(report["srm"])
    for metric in report["metrics"]:
        treatment = metric["groups"][1]
        assert {"n", "mean", "effect", "relative_effect", "ci", "p_value"} <= set(treatment)
    page = tmp_path / "report.html"
    html = runner.invoke(app, ["analyze", "--experiment", "cli-experiment", "--events",
                               str(events), "--metrics", str(catalog), "--format", "html",
                               "--output", str(page)])
    assert html.exit_code == 0, html.output
    text = page.read_text()
    assert text.count("<svg") == 1 + len(report["metrics"])
    assert "<script" not in text and "href=" not in text and "src=" not in text


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["analyze", "--experiment", "x", "--data-dir",
                                      str(tmp_path)])
    assert result.exit_code == 2
    assert "no Parquet files under" in result.output


def test_every_metric_kind_matches_a_direct_computation(tmp_path: Path) -> None:
    """Sum, ratio, CUPED-adjusted count and SQL metrics against pandas over the same files."""
    import pandas as pd

    from splitlab.analysis.metrics import load_catalog

    spec = Simulation(EXPERIMENT, 6000, seed=12, lifts={"treatment": 1.2})
    events = tmp_path / "events.parquet"
    write_events(simulate(spec), events)
    materialize(events, tmp_path / "data")
    engine = DuckDBEngine(threads=1)
    engine.load_events(tmp_path / "data")
    catalog = load_catalog(Path(__file__).parents[3] / "examples" / "metrics.yaml")
    report = analyze(engine, Options(EXPERIMENT.name, EXPERIMENT.groups), catalog)
    engine.close()
    metrics = {m.name: {g.group: g for g in m.groups} for m in report.metrics}

    frame = pd.concat(pd.read_parquet(p) for p in (tmp_path / "data").rglob("*.parquet"))
    enrolled = frame[frame["action"] == "experiment_enrollment"].sort_values("ts")
    units = enrolled.drop_duplicates("subject_id")[["subject_id", "variation", "ts"]]
    units = units.rename(columns={"ts": "first"}).set_index("subject_id")
    joined = frame.join(units[["first"]], on="subject_id", how="inner")
    after = joined[joined["ts"] >= joined["first"]]
    before = joined[(joined["ts"] < joined["first"])
                    & (joined["ts"] >= joined["first"] - 14 * 86_400_000_000)]

    def per_unit(rows: pd.DataFrame, action: str, column: str | None = None) -> pd.Series:
        chosen = rows[rows["action"] == action].groupby("subject_id")
        totals = chosen[column].sum() if column else chosen.size()
        return totals.reindex(units.index, fill_value=0).astype(float)

    value = per_unit(after, "edit_saved", "value")
    clicks, pre_clicks = per_unit(after, "click"), per_unit(before, "click")
    groups = {g: units["variation"] == g for g in EXPERIMENT.groups}
    for group, mask in groups.items():
        assert metrics["edit_value_per_unit"][group].mean == pytest.approx(value[mask].mean())
        assert metrics["value_per_click"][group].mean == pytest.approx(
            value[mask].sum() / clicks[mask].sum())
    # CUPED: θ pooled within groups, then y - θ (x - mean x).
    centred = {g: (clicks[m] - clicks[m].mean(), pre_clicks[m] - pre_clicks[m].mean())
               for g, m in groups.items()}
    theta = (sum((y * x).sum() for y, x in centred.values())
             / sum((x * x).sum() for _, x in centred.values()))
    for group, mask in groups.items():
        adjusted = clicks[mask] - theta * (pre_clicks[mask] - pre_clicks.mean())
        assert metrics["clicks_per_unit"][group].mean == pytest.approx(adjusted.mean())
    # The SQL metric counts every exposure of the unit (its template has no time window).
    all_exposures = frame[frame["action"] == "experiment_exposure"].groupby("subject_id").size()
    with_exposure = units.join(all_exposures.rename("n"), how="inner")
    for group in EXPERIMENT.groups:
        chosen = with_exposure[with_exposure["variation"] == group]["n"]
        assert metrics["exposures_per_unit"][group].n == len(chosen)
        assert metrics["exposures_per_unit"][group].mean == pytest.approx(chosen.mean())
    treatment = metrics["clicks_per_unit"]["treatment"]
    assert treatment.sequential_ci is not None and treatment.ci is not None
    low, high = treatment.sequential_ci
    assert low < treatment.ci[0] < treatment.ci[1] < high  # always-valid is wider


def test_event_times_are_iso_8601_utc() -> None:
    from datetime import UTC, datetime

    import numpy as np

    from splitlab.simulate.arrow import iso_times

    micros = np.random.default_rng(0).integers(0, 4_102_444_800_000_000, size=2000)
    micros = np.concatenate([micros, [0, 951_782_400_000_000, 1_709_164_799_999_999]])
    expected = [
        datetime.fromtimestamp(int(m) // 1000 / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        + "Z" for m in micros
    ]
    assert iso_times(micros).to_pylist() == expected


def test_cli_materialize_and_simulate_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    events = tmp_path / "e.jsonl"
    assert runner.invoke(app, ["simulate", "--output", str(events), "--units", "50"]).exit_code == 0
    first = runner.invoke(app, ["materialize", "--events", str(events), "--output",
                                str(tmp_path / "d")])
    assert first.exit_code == 0 and "materialised 1 file(s)" in first.output
    again = runner.invoke(app, ["materialize", "--events", str(events), "--output",
                                str(tmp_path / "d")])
    assert "skipped 1 already done" in again.output
    bad = runner.invoke(app, ["simulate", "--output", str(events), "--fault", "control"])
    assert bad.exit_code == 2 and "--fault must look like group=number" in bad.output
    missing = runner.invoke(app, ["materialize", "--events", str(tmp_path / "none"),
                                  "--output", str(tmp_path / "d")])
    assert missing.exit_code == 2 and "no such events file or directory" in missing.output


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"units": -5}, "units must be at least 0"),
        ({"mixed_share": 1.5}, "mixed share"),
        ({"conversion": -0.1}, "base conversion rate"),
        ({"lifts": {"nope": 1.1}}, "name groups of the experiment"),
        ({"lifts": {"treatment": -1.0}}, "non-negative"),
        ({"fault": Fault("nope", 0.1)}, "not a group"),
        ({"fault": Fault("treatment", 1.7)}, "lost share"),
    ],
)
def test_a_simulation_that_cannot_run_is_refused_with_the_reason(
    changes: dict[str, object], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        Simulation(EXPERIMENT, **{"units": 10, **changes})  # type: ignore[arg-type]
