"""Counting units on DuckDB: first enrollment or exposure, breakdowns, mixed units, SRM."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from splitlab.analysis.analyze import Options, analyze
from splitlab.analysis.engines import DuckDBEngine
from splitlab.analysis.materialize import materialize
from splitlab.analysis.srm import ConfiguredSplit
from splitlab.errors import AnalysisError

EXPERIMENT = "counting-experiment"


def event(subject: str, group: str, action: str, dt: str, **extra: Any) -> dict[str, Any]:
    return {
        "$schema": "/analytics/product_metrics/web/base/2.1.0",
        "meta": {"id": f"{subject}-{action}-{dt}", "stream": "product_metrics.web_base"},
        "dt": dt,
        "action": action,
        "mediawiki": {"database": extra.pop("site", "enwiki")},
        "experiment": {"enrolled": extra.pop("experiment", EXPERIMENT), "assigned": group,
                       "subject_id": subject, "sampling_unit": "mw-user"},
        **extra,
    }


def load(engine: DuckDBEngine, tmp_path: Path, events: list[dict[str, Any]]) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in events))
    materialize(source, tmp_path / "data")
    engine.load_events(tmp_path / "data")


def test_first_enrollment_counts_and_breakdowns(engine: DuckDBEngine, tmp_path: Path) -> None:
    load(engine, tmp_path, [
        # s1 enrolls twice; the first (api, dewiki) counts.
        event("s1", "control", "experiment_enrollment", "2026-11-02T10:00:00Z",
              action_source="page_view", site="enwiki"),
        event("s1", "control", "experiment_enrollment", "2026-11-01T10:00:00Z",
              action_source="api", site="dewiki"),
        event("s2", "treatment", "experiment_enrollment", "2026-11-01T11:00:00Z",
              action_source="page_view"),
        event("s3", "treatment", "experiment_enrollment", "2026-11-02T11:00:00Z",
              action_source="account_creation"),
        # s4 is seen in both groups: counted as mixed, not in either group.
        event("s4", "control", "experiment_enrollment", "2026-11-01T12:00:00Z",
              action_source="page_view"),
        event("s4", "treatment", "click", "2026-11-01T13:00:00Z"),
        # s5 has only an exposure; another experiment's enrollment is ignored.
        event("s5", "control", "experiment_exposure", "2026-11-03T00:00:00Z"),
        event("s6", "control", "experiment_enrollment", "2026-11-01T00:00:00Z",
              experiment="another-experiment"),
    ])
    report = analyze(engine, Options(EXPERIMENT, groups=("control", "treatment")))
    assert report.groups == {"control": 1, "treatment": 2}
    assert report.units_total == 4
    assert report.units_in_multiple_groups == 1
    assert report.by_action_source == {
        "api": {"control": 1}, "page_view": {"treatment": 1},
        "account_creation": {"treatment": 1},
    }
    assert report.by_site == {"dewiki": {"control": 1}, "enwiki": {"treatment": 2}}
    assert report.by_day == {"2026-11-01": {"control": 1, "treatment": 1},
                             "2026-11-02": {"treatment": 1}}
    assert report.srm.observed_units == {"control": 1, "treatment": 2}
    assert report.srm.expected == {"control": 0.5, "treatment": 0.5}

    by_exposure = analyze(engine, Options(EXPERIMENT, trigger="exposure"))
    assert by_exposure.groups == {"control": 1}


def test_configured_group_without_units_is_in_the_srm(engine: DuckDBEngine,
                                                       tmp_path: Path) -> None:
    load(engine, tmp_path, [
        event(f"u{i}", "control", "experiment_enrollment", "2026-11-01T00:00:00Z")
        for i in range(30)
    ])
    report = analyze(engine, Options(EXPERIMENT, groups=("control", "treatment")))
    assert report.groups == {"control": 30, "treatment": 0}
    # 30 against 0 when 15/15 is expected: X² = 30, p = 4.3e-8.
    assert report.srm.statistic == pytest.approx(30.0)
    assert report.srm.flagged


def test_weights_set_the_expected_split(engine: DuckDBEngine, tmp_path: Path) -> None:
    load(engine, tmp_path, [
        event(f"u{i}", "control" if i < 90 else "treatment", "experiment_enrollment",
              "2026-11-01T00:00:00Z") for i in range(120)
    ])
    split = ConfiguredSplit(("control", "treatment"), {"default": (3.0, 1.0)})
    report = analyze(engine, Options(EXPERIMENT, ("control", "treatment"), split))
    assert report.srm.expected_units == {"control": 90.0, "treatment": 30.0}
    assert report.srm.statistic == pytest.approx(0.0)


def test_unknown_experiment_is_a_clear_error(engine: DuckDBEngine, tmp_path: Path) -> None:
    load(engine, tmp_path, [event("s1", "control", "experiment_enrollment",
                                  "2026-11-01T00:00:00Z")])
    with pytest.raises(AnalysisError, match="no enrollment events for experiment 'nope'"):
        analyze(engine, Options("nope"))


def test_materialize_is_incremental(tmp_path: Path) -> None:
    source = tmp_path / "in" / "a.jsonl"
    source.parent.mkdir()
    rows = [event("s1", "control", "experiment_enrollment", "2026-11-01T00:00:00Z"),
            event("s2", "control", "experiment_enrollment", "2026-11-02T00:00:00Z")]
    source.write_text("".join(json.dumps(e) + "\n" for e in rows))
    first = materialize(source.parent, tmp_path / "data")
    assert list(first.written.values()) == [2]
    again = materialize(source.parent, tmp_path / "data")
    assert again.written == {} and len(again.skipped) == 1
    source.write_text(json.dumps(rows[0]) + "\n")  # changed: its parts are replaced
    materialize(source.parent, tmp_path / "data")
    duck = DuckDBEngine(threads=1)
    duck.load_events(tmp_path / "data")
    assert duck.query("SELECT COUNT(*), MIN(subject_id) FROM events") == [(1, "s1")]
    days = sorted(p.parent.name for p in (tmp_path / "data").rglob("*.parquet"))
    assert days == ["day=2026-11-01"]
    duck.close()


def test_values_come_from_numeric_action_context(tmp_path: Path) -> None:
    rows = [event("s1", "control", "edit_saved", "2026-11-01T00:00:00Z", action_context=c)
            for c in ("12.5", "-3", "{\"x\": 1}", "1e2")]
    for number, row in enumerate(rows):  # four events, not one sent four times
        row["meta"] = {**row["meta"], "id": f"value-{number}"}
    source = tmp_path / "e.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in rows))
    materialize(source, tmp_path / "data")
    duck = DuckDBEngine(threads=1)
    duck.load_events(tmp_path / "data")
    values = duck.query("SELECT value FROM events ORDER BY action_context")
    assert sorted((v for (v,) in values), key=str) == sorted([12.5, -3.0, None, 100.0], key=str)
    duck.close()


def test_a_group_outside_the_config_is_a_mismatch(engine: DuckDBEngine, tmp_path: Path) -> None:
    load(engine, tmp_path, [
        event(f"u{i}", ("control", "treatment", "typo")[i % 3], "experiment_enrollment",
              "2026-11-01T00:00:00Z") for i in range(30)
    ])
    report = analyze(engine, Options(EXPERIMENT, groups=("control", "treatment")))
    assert report.groups == {"control": 10, "treatment": 10, "typo": 10}
    assert report.srm.expected["typo"] == 0.0
    assert report.srm.flagged and report.srm.p_value == 0.0


def test_subject_keys_are_64_bits_of_the_id() -> None:
    import hashlib

    import pyarrow as pa

    from splitlab.analysis.table import subject_keys

    def signed(value: int) -> int:
        return value - (1 << 64) if value >= 1 << 63 else value

    digest = hashlib.sha256(b"42some-experiment").hexdigest()
    ids = [digest, "f" * 64, "s1", None, "0123456789abcdeX" + "0" * 48]
    expected = [signed(int(digest[:16], 16)), -1,
                signed(int.from_bytes(hashlib.sha256(b"s1").digest()[:8], "big")), None,
                signed(int.from_bytes(hashlib.sha256(ids[4].encode()).digest()[:8], "big"))]
    assert subject_keys(pa.array(ids)).to_pylist() == expected
    assert subject_keys(pa.array(ids[:2])).to_pylist() == expected[:2]  # the all-digest path
    assert subject_keys(pa.array(ids).slice(2)).to_pylist() == expected[2:]


def test_a_metric_on_too_few_units_carries_a_clear_error(engine: DuckDBEngine,
                                                          tmp_path: Path) -> None:
    from splitlab.analysis.metrics import parse_catalog

    load(engine, tmp_path, [
        event("a", "control", "experiment_enrollment", "2026-11-01T00:00:00Z"),
        event("b", "control", "experiment_enrollment", "2026-11-01T00:00:00Z"),
        event("c", "treatment", "experiment_enrollment", "2026-11-01T00:00:00Z"),
    ])
    catalog = parse_catalog([{"name": "clicks", "kind": "count", "filter": {"action": "click"}}])
    [metric] = analyze(engine, Options(EXPERIMENT), catalog).metrics
    assert metric.error is not None
    assert re.fullmatch(r"group 'treatment' has 1 unit .*two\)", metric.error)
    assert [g.p_value for g in metric.groups] == [None, None]


def test_the_intake_exports_materialise_alike(tmp_path: Path) -> None:
    """``splitlab events export`` Parquet (each event as JSON text in an ``event`` column) gives
    the same analysis rows as its JSON lines and as the events themselves."""
    from splitlab.intake.export import write_jsonl, write_parquet
    from splitlab.intake.sinks import StoredEvent

    rows = [event(f"s{i}", ("control", "treatment")[i % 2], action, "2026-11-01T00:00:00Z",
                  action_source="api", performer={"id": i, "is_logged_in": True})
            for i in range(4) for action in ("experiment_enrollment", "click")]
    stored = [StoredEvent(e["meta"]["id"], e["meta"]["stream"], "2026-11-01T00:00:01.000Z",
                          json.dumps(e).encode()) for e in rows]
    write_jsonl(stored, tmp_path / "export.jsonl")
    write_parquet(stored, tmp_path / "export.parquet")
    tables = []
    for name in ("export.jsonl", "export.parquet"):
        target = tmp_path / name.replace(".", "-")
        materialize(tmp_path / name, target)
        duck = DuckDBEngine(threads=1)
        duck.load_events(target)
        tables.append(duck.query(
            "SELECT event_id, ts, action, action_source, site, performer_id, experiment, "
            "variation, subject_id, sampling_unit FROM events ORDER BY event_id"))
        duck.close()
        parts = {p.parent.parent.name for p in target.rglob("*.parquet")}
        assert parts == {"stream=product_metrics.web_base"}
    assert tables[0] == tables[1]
    assert [(r[0], r[2], r[5], r[7], r[8]) for r in tables[1]] == sorted(
        (e["meta"]["id"], e["action"], e["performer"]["id"], e["experiment"]["assigned"],
         e["experiment"]["subject_id"]) for e in rows)


def test_an_event_sent_twice_counts_once(engine: DuckDBEngine, tmp_path: Path) -> None:
    """A client's re-send keeps its meta.id: the count metric sees it once (it saw it twice
    before the analysis deduplicated by meta.id)."""
    from splitlab.analysis.metrics import parse_catalog

    clicks = event("s1", "control", "click", "2026-11-01T11:00:00Z")
    load(engine, tmp_path, [
        event("s1", "control", "experiment_enrollment", "2026-11-01T10:00:00Z"),
        event("s2", "treatment", "experiment_enrollment", "2026-11-01T10:00:00Z"),
        clicks, clicks, {**clicks, "meta": {**clicks["meta"], "id": "other"}},
        event("s2", "treatment", "click", "2026-11-01T11:00:00Z"),
        event("s3", "treatment", "experiment_enrollment", "2026-11-01T10:00:00Z"),
        event("s4", "control", "experiment_enrollment", "2026-11-01T10:00:00Z"),
    ])
    catalog = parse_catalog([{"name": "clicks", "kind": "count", "filter": {"action": "click"}}])
    report = analyze(engine, Options(EXPERIMENT, groups=("control", "treatment")), catalog)
    assert report.metrics[0].groups[0].mean == 1.0  # s1: the re-sent click once, plus "other"
    assert report.metrics[0].groups[1].mean == 0.5
