"""Simulated traffic: what it sends through the SDK, and that its true effect is recoverable."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from splitlab.cli import app
from splitlab.core.model import Experiment
from splitlab.sdk import Client, MemoryConfigSource, MemoryEventSender
from splitlab.simulate import Fault, Simulation, send

from .sdk_helpers import IntakeStub

ROW: dict[str, Any] = {"name": "simulated-checkout", "groups": ["control", "treatment"],
                       "sample_rate": {"default": 0.5}, "user_identifier_type": "edge-unique",
                       "start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}


EXPERIMENT = Experiment.from_config(ROW)


def client_at(now: datetime) -> tuple[Client, MemoryEventSender]:
    sender = MemoryEventSender()
    return Client(MemoryConfigSource([ROW]), sender, clock=lambda: now), sender


def test_events_match_the_summary() -> None:
    client, sender = client_at(datetime(2026, 6, 1, tzinfo=UTC))
    summary = send(client, Simulation(EXPERIMENT, 3000, conversion=0.2,
                                      lifts={"treatment": 1.5}))
    actions = Counter(e["action"] for e in sender.events)
    enrolled = sum(t.units for t in summary.groups.values())
    assert enrolled + summary.not_enrolled == 3000
    assert 1300 < enrolled < 1700  # sample rate 0.5
    assert actions["experiment_enrollment"] == actions["experiment_exposure"] == enrolled
    assert actions["edit_saved"] == sum(t.conversions for t in summary.groups.values())
    by_group = Counter(e["experiment"]["assigned"] for e in sender.events
                       if e["action"] == "edit_saved")
    assert by_group == {g: t.conversions for g, t in summary.groups.items()}
    assert {e["action_source"] for e in sender.events if "action_source" in e} == {"simulation"}
    assert not any("sim-anon" in json.dumps(e) for e in sender.events)


def test_same_seed_same_traffic_and_the_lift_is_recovered() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    spec = Simulation(EXPERIMENT, 12_000, conversion=0.10, lifts={"treatment": 1.5}, seed=7)
    first = send(client_at(now)[0], spec)
    second = send(client_at(now)[0], spec)
    assert first == second
    control, treatment = first.groups["control"], first.groups["treatment"]
    p1, p2 = control.conversions / control.units, treatment.conversions / treatment.units
    se = math.sqrt(p1 * (1 - p1) / control.units + p2 * (1 - p2) / treatment.units)
    assert abs((p2 - p1) - 0.05) < 4 * se
    other = send(client_at(now)[0], Simulation(EXPERIMENT, 12_000, seed=8, conversion=0.10,
                                               lifts={"treatment": 1.5}))
    assert other != first


def test_refuses_unknown_inactive_and_impossible_simulations() -> None:
    client, _ = client_at(datetime(2027, 6, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="not active"):
        send(client, Simulation(EXPERIMENT, 10))
    missing = Experiment.from_config({**ROW, "name": "missing-experiment"})
    with pytest.raises(ValueError, match="no experiment"):
        send(client, Simulation(missing, 10))
    with pytest.raises(ValueError, match="only in files"):
        send(client_at(datetime(2026, 6, 1, tzinfo=UTC))[0],
             Simulation(EXPERIMENT, 10, fault=Fault("control", 0.1)))
    with pytest.raises(ValueError, match="non-negative"):
        Simulation(EXPERIMENT, 10, lifts={"treatment": -0.5})
    with pytest.raises(ValueError, match="no client to send through"):
        send({}, Simulation(EXPERIMENT, 10))


def test_a_lift_that_passes_certainty_is_capped_at_one() -> None:
    client, _ = client_at(datetime(2026, 6, 1, tzinfo=UTC))
    summary = send(client, Simulation(EXPERIMENT, 400, conversion=0.6, lifts={"treatment": 2}))
    treatment = summary.groups["treatment"]
    assert treatment.true_rate == 1.0 and treatment.conversions == treatment.units > 0


def test_cli_sends_through_the_sdk_to_an_intake_and_reports(
    tmp_path: Path, intake: IntakeStub
) -> None:
    config = tmp_path / "experiments.json"
    config.write_text(json.dumps([{**ROW, "start": None, "end": None}]))
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "--users", "500", "--config", str(config),
                                 "--experiment", "simulated-checkout", "--intake", intake.url,
                                 "--lift", "treatment=1.2"])
    assert result.exit_code == 0, result.output
    units = sum(int(line.split("units=")[1].split()[0]) for line in result.output.splitlines()
                if "units=" in line)
    assert units == 500
    assert "true_rate=0.12" in result.output
    assert sum(1 for e in intake.events if e["action"] == "experiment_enrollment") > 100
    both = runner.invoke(app, ["simulate", "--config", str(config), "--experiment",
                               "simulated-checkout", "--output", str(tmp_path / "x.jsonl"),
                               "--intake", intake.url])
    assert both.exit_code == 2 and "exactly one" in both.output
    faulty = runner.invoke(app, ["simulate", "--config", str(config), "--experiment",
                                 "simulated-checkout", "--intake", intake.url,
                                 "--fault", "control=0.1"])
    assert faulty.exit_code == 2 and "--output" in faulty.output


SPLIT_ROW: dict[str, Any] = {
    "name": "simulated-split", "algorithm": "sl-v2", "groups": ["control", "treatment"],
    "traffic_split": {"default": {"control": 10, "treatment": 30},
                      "dewiki": {"control": 25, "treatment": 25},
                      "itwiki": {"control": 40, "treatment": 10}},
    "user_identifier_type": "mw-user"}


def test_cli_without_a_site_sends_from_every_site_in_its_own_split(
    tmp_path: Path, intake: IntakeStub
) -> None:
    config = tmp_path / "experiments.json"
    config.write_text(json.dumps([SPLIT_ROW]))
    result = CliRunner().invoke(app, ["simulate", "--users", "6000", "--config", str(config),
                                      "--experiment", "simulated-split", "--intake", intake.url])
    assert result.exit_code == 0, result.output
    enrolled = Counter((e["mediawiki"]["database"], e["experiment"]["assigned"])
                       for e in intake.events if e["action"] == "experiment_enrollment")
    sites = {site for site, _ in enrolled}
    assert sites == {"enwiki", "dewiki", "frwiki", "jawiki", "itwiki"}  # itwiki: its own entry
    for site in sites:  # each site's treatment share is its configured one (binomial, 4.5 sd)
        split = SPLIT_ROW["traffic_split"].get(site, SPLIT_ROW["traffic_split"]["default"])
        expected = split["treatment"] / (split["control"] + split["treatment"])
        n = enrolled[site, "control"] + enrolled[site, "treatment"]
        assert n > 150, (site, n)
        share = enrolled[site, "treatment"] / n
        assert abs(share - expected) < 4.5 * math.sqrt(expected * (1 - expected) / n), site
    dewiki = enrolled["dewiki", "control"] + enrolled["dewiki", "treatment"]
    assert f"site dewiki\tenrolled={dewiki}" in result.output
