"""splitlab events export / tail over the embedded log."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from splitlab.cli import app
from splitlab.intake.export import tail
from splitlab.intake.sinks import StoredEvent
from splitlab.intake.sqlite_log import SQLiteEventLog

runner = CliRunner()


def event(i: int, stream: str) -> StoredEvent:
    body = {"$schema": "/analytics/product_metrics/web/base/2.1.0", "action": f"a{i}",
            "meta": {"id": f"id-{i}", "stream": stream, "dt": f"2026-11-22T0{i}:00:00.000Z"}}
    return StoredEvent(f"id-{i}", stream, body["meta"]["dt"], orjson.dumps(body))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    log = SQLiteEventLog(tmp_path / "events.sqlite")
    log.append([event(i, "one" if i % 2 else "two") for i in range(6)])
    log.close()
    return tmp_path


def test_export_jsonl_filters_by_stream_and_since(data_dir: Path) -> None:
    out = data_dir / "out.jsonl"
    result = runner.invoke(app, ["events", "export", "--data-dir", str(data_dir), "--output",
                                 str(out), "--stream", "one", "--since", "2026-11-22T02:00:00Z"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["meta"]["id"] for e in lines] == ["id-3", "id-5"]


def test_export_parquet_by_extension(data_dir: Path) -> None:
    out = data_dir / "out.parquet"
    result = runner.invoke(app, ["events", "export", "--data-dir", str(data_dir),
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pylist()
    assert [row["id"] for row in table] == [f"id-{i}" for i in range(6)]
    assert table[2]["action"] == "a2" and table[2]["dt"].hour == 2
    assert json.loads(table[0]["event"])["meta"]["stream"] == "two"


def test_export_errors_are_one_line(data_dir: Path, tmp_path: Path) -> None:
    cases = [
        (["--data-dir", str(tmp_path / "none")], "no event log"),
        (["--data-dir", str(data_dir), "--format", "csv"], "--format"),
        (["--data-dir", str(data_dir), "--since", "soon"], "--since"),
        (["--data-dir", str(data_dir), "--source", "kafka"], "--source"),
        (["--data-dir", str(data_dir), "--source", "postgresql"], "needs --database-url"),
    ]
    for args, expected in cases:
        result = runner.invoke(app, ["events", "export", "--output", str(tmp_path / "o"), *args],
                               env={"SPLITLAB_DATABASE_URL": ""})
        assert result.exit_code == 2, args
        assert expected in result.output


def test_tail_prints_the_newest(data_dir: Path) -> None:
    result = runner.invoke(app, ["events", "tail", "--data-dir", str(data_dir), "-n", "2",
                                 "--stream", "two"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["meta"]["id"] for line in result.output.splitlines()] == [
        "id-2", "id-4"]


def test_tail_follow_yields_new_events(data_dir: Path) -> None:
    log = SQLiteEventLog(data_dir / "events.sqlite")
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        log.append([event(7, "one")])

    followed = tail(log, "one", 1, follow=True, sleep=sleep)
    assert [next(followed).id for _ in range(2)] == ["id-5", "id-7"]
    assert len(naps) == 1
