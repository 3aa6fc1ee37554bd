"""``splitlab analyze --memory``: DuckDB's cap, checked before any work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from splitlab.analysis import engines
from splitlab.cli import app

runner = CliRunner()


def analyze(events: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["analyze", "--experiment", "simulated-experiment", "--events",
                                 str(events), "--format", "json", *extra])
    return result.exit_code, result.output


def test_a_memory_cap_gives_the_same_report_and_a_bad_one_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings: list[tuple[Any, ...]] = []
    configure = engines.configure

    def recording(connection: Any, *args: Any) -> None:
        settings.append(args)
        configure(connection, *args)

    monkeypatch.setattr(engines, "configure", recording)
    events = tmp_path / "e.jsonl"
    made = runner.invoke(app, ["simulate", "--output", str(events), "--units", "400"])
    assert made.exit_code == 0, made.output
    code, free = analyze(events)
    assert code == 0, free
    code, capped = analyze(events, "--memory", "256MiB")
    assert code == 0, capped
    assert json.loads(capped) == json.loads(free)
    (_, default, spill), (_, cap, _) = settings
    assert default is None and cap == "256MiB"
    assert spill.parent.name.startswith("splitlab-analyze-")  # the scratch folder, not the cwd
    for bad in ("100B", "63MiB", "lots"):
        code, output = analyze(events, "--memory", bad)
        assert code == 2 and "--memory" in output and "at least 64MiB" in output, output
    code, output = analyze(events, "--memory", "1GB", "--engine", "spark")
    assert code == 2 and "Spark takes its memory" in output, output
