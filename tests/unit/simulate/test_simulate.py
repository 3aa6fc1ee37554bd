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
from splitlab.sdk import Client, MemoryConfigSource, MemoryEventSender
from splitlab.simulate import Scenario, simulate

ROW: dict[str, Any] = {"name": "simulated-checkout", "groups": ["control", "treatment"],
                       "sample_rate": {"default": 0.5}, "user_identifier_type": "edge-unique",
                       "start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}


def client_at(now: datetime) -> tuple[Client, MemoryEventSender]:
    sender = MemoryEventSender()
    return Client(MemoryConfigSource([ROW]), sender, clock=lambda: now), sender


def test_events_match_the_summary() -> None:
    client, sender = client_at(datetime(2026, 6, 1, tzinfo=UTC))
    summary = simulate(client, Scenario("simulated-checkout", 3000, base_rate=0.2, lift=0.1))
    actions = Counter(e["action"] for e in sender.events)
    enrolled = sum(t.units for t in summary.groups.values())
    assert enrolled + summary.not_enrolled == 3000
    assert 1300 < enrolled < 1700  # sample rate 0.5
    assert actions["experiment_enrollment"] == actions["experiment_exposure"] == enrolled
    assert actions["conversion"] == sum(t.conversions for t in summary.groups.values())
    by_group = Counter(e["experiment"]["assigned"] for e in sender.events
                       if e["action"] == "conversion")
    assert by_group == {g: t.conversions for g, t in summary.groups.items()}
    assert {e["action_source"] for e in sender.events if "action_source" in e} == {"simulation"}
    assert not any("sim-anon" in json.dumps(e) for e in sender.events)


def test_same_seed_same_traffic_and_the_lift_is_recovered() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    scenario = Scenario("simulated-checkout", 12_000, base_rate=0.10, lift=0.05, seed=7)
    first = simulate(client_at(now)[0], scenario)
    second = simulate(client_at(now)[0], scenario)
    assert first == second
    control, treatment = first.groups["control"], first.groups["treatment"]
    p1, p2 = control.conversions / control.units, treatment.conversions / treatment.units
    se = math.sqrt(p1 * (1 - p1) / control.units + p2 * (1 - p2) / treatment.units)
    assert abs((p2 - p1) - 0.05) < 4 * se
    other = simulate(client_at(now)[0], Scenario("simulated-checkout", 12_000, 0.10, 0.05, 8))
    assert other != first


def test_refuses_unknown_inactive_and_impossible_scenarios() -> None:
    client, _ = client_at(datetime(2027, 6, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="not active"):
        simulate(client, Scenario("simulated-checkout", 10))
    with pytest.raises(ValueError, match="no experiment"):
        simulate(client, Scenario("missing-experiment", 10))
    with pytest.raises(ValueError):
        Scenario("simulated-checkout", 10, base_rate=0.99, lift=0.05)


def test_cli_writes_jsonl_and_reports(tmp_path: Path) -> None:
    config = tmp_path / "experiments.json"
    config.write_text(json.dumps([{**ROW, "start": None, "end": None}]))
    out = tmp_path / "events.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "--users", "500", "--config", str(config),
                                 "--experiment", "simulated-checkout", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    units = sum(int(line.split("units=")[1].split()[0]) for line in result.output.splitlines())
    assert units == 500
    assert sum(1 for e in lines if e["action"] == "experiment_enrollment") > 100
    both = runner.invoke(app, ["simulate", "--config", str(config), "--experiment",
                               "simulated-checkout", "--out", str(out), "--intake", "http://x"])
    assert both.exit_code == 2 and "exactly one" in both.output
