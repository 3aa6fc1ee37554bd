"""The analysis pipeline end to end, each step a real ``splitlab`` command against a real server:

``splitlab simulate --intake`` sends SDK traffic with a known lift to a ``splitlab serve``
subprocess (the experiment created through its admin API, the config read back from its config
API) → ``splitlab events export`` reads the server's event log (JSON lines and Parquet) →
``splitlab analyze --format json`` on each export (the log also holds an event of no experiment
and a refused one on the error stream). The units per group must be what simulate
reported sending, the split healthy, the conversion rates exactly the ones simulate drew, and the
true lift inside the reported confidence interval.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.serve_helpers import create_experiment, free_port, server
from tests.unit.intake.conftest import web_event

pytestmark = pytest.mark.integration
pytest.importorskip("duckdb")

TOKEN = "analysis-e2e-token"
EXPERIMENT = "analysis-e2e-checkout"
UNITS = 1500
BASE_RATE = 0.2
LIFT = 1.5  # treatment converts at 0.3: a true absolute effect of +0.1, relative +50%
METRICS = """\
metrics:
  - name: conversion_rate
    kind: proportion
    filter: {action: edit_saved}
"""


@pytest.fixture
def splitlab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real server holding the experiment (rate 0.8, so some units are not enrolled)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    with server(data, port, workers=1, env={"SPLITLAB_ADMIN_TOKEN": TOKEN},
                log=tmp_path / "serve.log"):
        create_experiment(url, TOKEN, {"name": EXPERIMENT, "groups": ["control", "treatment"],
                                       "sample_rate": {"default": 0.8},
                                       "user_identifier_type": "mw-user"})
        yield url, data


def splitlab_command(*args: str) -> str:
    """Run ``splitlab ARGS`` and return its standard output (it must succeed)."""
    run = subprocess.run([sys.executable, "-m", "splitlab.cli", *args], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, f"splitlab {' '.join(args)}: {run.stderr}"
    return run.stdout


def simulated(output: str) -> dict[str, dict[str, float]]:
    """Simulate's report: ``group<TAB>units=..<TAB>conversions=..`` lines, as numbers."""
    report: dict[str, dict[str, float]] = {}
    for line in output.splitlines():
        group, *fields = line.split("\t")
        report[group] = {k: float(v) for k, v in (f.split("=") for f in fields)}
    return report


def same(left: Any, right: Any, path: str = "report") -> None:
    """Equal structures, floats to 1e-9 (DuckDB's parallel sums may round differently)."""
    if isinstance(left, float) and isinstance(right, float):
        assert left == pytest.approx(right, rel=1e-9, abs=1e-12), path
    elif isinstance(left, dict) and isinstance(right, dict):
        assert left.keys() == right.keys(), path
        for key in left:
            same(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list) and isinstance(right, list):
        assert len(left) == len(right), path
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            same(a, b, f"{path}[{index}]")
    else:
        assert left == right, path


def test_simulate_export_analyze(splitlab: tuple[str, Path], tmp_path: Path) -> None:
    url, data = splitlab
    config = tmp_path / "experiments.json"
    config.write_text(httpx.get(f"{url}/api/v1/experiments").text)
    sent = simulated(splitlab_command(
        "simulate", "--intake", f"{url}/v1/events", "--config", str(config),
        "--experiment", EXPERIMENT, "--users", str(UNITS), "--seed", "11",
        "--base-rate", str(BASE_RATE), "--lift", f"treatment={LIFT}"))
    assert sent["not-enrolled"]["units"] > 0
    assert sent["control"]["units"] + sent["treatment"]["units"] + sent["not-enrolled"][
        "units"] == UNITS
    # Other traffic in the same log: an event of no experiment, and one the intake refuses
    # (it lands on the error stream, in its own shape). Neither may change the analysis.
    other = web_event(action="edit_saved")
    del other["experiment"]
    refused = web_event(unknown_field=1)
    refused["experiment"]["enrolled"] = EXPERIMENT
    posted = httpx.post(f"{url}/v1/events", json=[other, refused])
    assert posted.status_code == 207, posted.text
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(METRICS)

    reports = []
    for fmt in ("jsonl", "parquet"):
        exported = tmp_path / f"events.{fmt}"
        splitlab_command("events", "export", "--data-dir", str(data), "--output", str(exported),
                         "--format", fmt)
        reports.append(json.loads(splitlab_command(
            "analyze", "--experiment", EXPERIMENT, "--events", str(exported),
            "--config", str(config), "--metrics", str(metrics), "--format", "json")))
    same(reports[0], reports[1])  # the two export formats analyse the same
    report: dict[str, Any] = reports[0]

    units = {g: int(sent[g]["units"]) for g in ("control", "treatment")}
    assert report["groups"] == units
    assert report["units_total"] == sum(units.values())
    assert report["units_in_multiple_groups"] == 0
    assert report["by_action_source"] == {"simulation": units}
    assert report["srm"]["flagged"] is False
    assert report["srm"]["observed_units"] == units

    (metric,) = report["metrics"]
    by_group = {g["group"]: g for g in metric["groups"]}
    for group in units:
        assert by_group[group]["n"] == units[group]
        assert by_group[group]["mean"] == pytest.approx(
            sent[group]["conversions"] / sent[group]["units"], abs=1e-12)
    treatment = by_group["treatment"]
    true_effect = BASE_RATE * (LIFT - 1)
    low, high = treatment["ci"]
    assert low < true_effect < high, treatment
    low, high = treatment["relative_ci"]
    assert low < LIFT - 1 < high, treatment
    assert treatment["p_value"] < 0.05

    by_exposure = json.loads(splitlab_command(
        "analyze", "--experiment", EXPERIMENT, "--events", str(tmp_path / "events.parquet"),
        "--config", str(config), "--trigger", "exposure", "--format", "json"))
    assert by_exposure["groups"] == units  # the SDK sent one exposure per enrolled unit
