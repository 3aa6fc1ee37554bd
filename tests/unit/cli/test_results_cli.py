"""``splitlab results run``: a failed run does not end the worker (the next interval retries,
as the in-service scheduler does); with ``--once`` it exits 1 and says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from splitlab.cli import app
from splitlab.results import runner


class FailingOnce:
    """A scheduler whose first run raises; the second stops the worker like Ctrl-C would."""

    def __init__(self) -> None:
        self.runs = 0
        self.closed = False

    def run_once(self) -> Any:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("the lake is locked")
        raise KeyboardInterrupt

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def scheduler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FailingOnce:
    fake = FailingOnce()
    monkeypatch.setattr(runner, "build_scheduler", lambda registry, config: fake)
    monkeypatch.delenv("SPLITLAB_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return fake


def test_a_failed_run_is_reported_and_the_worker_goes_on(scheduler: FailingOnce,
                                                          tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["results", "run", "--interval", "0.01",
                                      "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert scheduler.runs == 2 and scheduler.closed
    assert "the results run failed (RuntimeError: the lake is locked); retrying" in result.output


def test_once_exits_1_naming_the_failure(scheduler: FailingOnce, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["results", "run", "--once",
                                      "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert scheduler.runs == 1 and scheduler.closed
    assert "the results run failed: the lake is locked" in result.output


def test_the_worker_takes_its_memory_limit_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    configs: list[runner.RunnerConfig] = []

    def build(registry: Any, config: runner.RunnerConfig) -> FailingOnce:
        configs.append(config)
        return FailingOnce()

    monkeypatch.setattr(runner, "build_scheduler", build)
    monkeypatch.delenv("SPLITLAB_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    command = ["results", "run", "--once", "--data-dir", str(tmp_path / "data")]
    CliRunner().invoke(app, command, env={"SPLITLAB_RESULTS_MEMORY": "2GiB"})
    assert [config.memory_limit for config in configs] == ["2GiB"]
    for bad in ("lots", "0GB", "-1GB", "4 gigs", "100B", "63MiB"):
        result = CliRunner().invoke(app, command, env={"SPLITLAB_RESULTS_MEMORY": bad})
        assert result.exit_code != 0
        assert "SPLITLAB_RESULTS_MEMORY" in result.output and "such as 4GB" in result.output
    assert len(configs) == 1
