"""`splitlab assign`: one line per id, bulk CSV, and one-line errors with exit code 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import ROOT
from splitlab import Experiment, assign
from splitlab.cli import app
from splitlab.core.model import experiments_from_document

EXAMPLE = ROOT / "examples" / "experiments.json"
runner = CliRunner()


def example(name: str) -> Experiment:
    rows = json.loads(EXAMPLE.read_text("utf-8"))
    return {e.name: e for e in experiments_from_document(rows)}[name]


def test_prints_one_line_per_identifier() -> None:
    result = runner.invoke(
        app, ["assign", "--config", str(EXAMPLE), "--experiment", "sticky-header-2026",
              "--site", "enwiki", "1", "2", "Ünïcode-user"],
    )
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    exp = example("sticky-header-2026")
    for (text, subject, status), identifier in zip(lines, [1, 2, "Ünïcode-user"], strict=True):
        expected = assign(identifier, exp, "enwiki")
        assert text == str(identifier)
        assert subject == expected.subject_id
        assert status == (expected.group if expected.in_sample else "not-in-sample")


def test_bulk_mode_writes_a_csv_with_the_same_answers(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join([*map(str, range(3000)), "", "anon-ü"]) + "\n", "utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["assign", "--config", str(EXAMPLE), "--experiment", "leveling-up-notifications",
              "--ids-from", str(ids), "--output", str(out)],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 3001
    exp = example("leveling-up-notifications")
    for row in rows[::97] + rows[-1:]:
        identifier: int | str = int(row["identifier"]) if row["identifier"].isdigit() else (
            row["identifier"])
        expected = assign(identifier, exp)
        assert row["subject_id"] == expected.subject_id
        assert row["group"] == (expected.group or "")
        assert row["in_sample"] == ("true" if expected.in_sample else "false")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json", "is not valid JSON"),
        ('{"rows": []}', "expected a list"),
        ('[{"name": "x", "groups": [], "sample_rate": 1, "user_identifier_type": "mw-user"}]',
         "groups"),
        ("[]", "no experiment 'sticky-header-2026'"),
    ],
)
def test_a_bad_config_file_gives_a_one_line_error_and_exit_code_2(
    tmp_path: Path, content: str, words: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(content, "utf-8")
    result = runner.invoke(
        app, ["assign", "--config", str(config), "--experiment", "sticky-header-2026", "1"]
    )
    assert result.exit_code == 2
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["assign", "--config", str(tmp_path / "nope.json"), "--experiment", "x", "1"]
    )
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
