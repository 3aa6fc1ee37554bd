"""The lake writer: exactly once by meta.id, both experiment fragments, incremental reads, and no
partial or duplicated data after the writer is killed mid-run."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from splitlab.intake.sinks import StoredEvent
from splitlab.intake.sqlite_log import SQLiteEventLog
from splitlab.results import lake as lake_module
from splitlab.results.lake import KEY, RUNS_DIR, Lake, id_key, id_keys
from splitlab.results.sources import LogPosition, LogSource, advance

EXPERIMENT = "sticky-header-2026"


def stored(body: dict[str, Any], event_id: str | None = None, dt: str = "2026-11-22T10:00:00.000Z",
           stream: str = "product_metrics.web_base") -> StoredEvent:
    """A stored event as the intake writes it (``meta.id`` and ``meta.dt`` set)."""
    event_id = event_id or str(uuid.uuid4())
    body = {**body, "meta": {"id": event_id, "dt": dt, "stream": stream}}
    return StoredEvent(event_id, stream, dt, orjson.dumps(body))


def singular(subject: str, group: str, action: str = "experiment_enrollment") -> dict[str, Any]:
    return {"action": action, "dt": "2026-11-22T09:59:59.000Z",
            "experiment": {"enrolled": EXPERIMENT, "assigned": group, "subject_id": subject,
                           "sampling_unit": "mw-user"}}


def plural(user: int | None, assigned: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"action": "experiment_enrollment",
                            "experiments": {"enrolled": list(assigned), "assigned": assigned}}
    if user is not None:
        body["performer"] = {"id": user, "is_logged_in": True}
    return body


def lake_rows(root: Path) -> list[tuple[Any, ...]]:
    """Every row of the lake, read with DuckDB straight from the files (an independent reader)."""
    pattern = str(root / "**" / "*.parquet")
    return duckdb.sql(
        f"SELECT event_id, experiment, variation, subject_id, sampling_unit, action, stream, day "
        f"FROM read_parquet('{pattern}', hive_partitioning = true) ORDER BY event_id, experiment"
    ).fetchall()


def extend(data: Path) -> Any:
    log = SQLiteEventLog(data / "events.sqlite")
    lake = Lake(data / "lake")
    try:
        return lake.extend(LogSource("sqlite", log))
    finally:
        lake.close()
        log.close()


def test_both_fragments_land_once_with_the_units_tk_v1_gives(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite")
    first = stored(singular("b" * 64, "treatment"))
    events = [first, stored(plural(42, {EXPERIMENT: "control", "other-experiment": "b"})),
              stored(plural(None, {EXPERIMENT: "control"}))]
    log.append(events)
    assert extend(tmp_path).written == 3
    log.append([stored(singular("c" * 64, "control"))])
    second = extend(tmp_path)
    assert (second.read, second.written) == (1, 1)  # only what is new is read
    rows = lake_rows(tmp_path / "lake")
    by_experiment = {(r[1], r[2], r[3], r[4]) for r in rows}
    user_42 = hashlib.sha256(f"42{EXPERIMENT}".encode()).hexdigest()
    assert (EXPERIMENT, "control", user_42, "mw-user") in by_experiment
    assert ("other-experiment", "b",
            hashlib.sha256(b"42other-experiment").hexdigest(), "mw-user") in by_experiment
    assert (EXPERIMENT, "control", None, None) in by_experiment  # anonymous 1.3.0: no unit
    assert (EXPERIMENT, "treatment", "b" * 64, "mw-user") in by_experiment
    assert len(rows) == 5
    assert {r[6] for r in rows} == {"product_metrics.web_base"}
    assert {str(r[7]) for r in rows} == {"2026-11-22"}
    log.close()


def test_a_resent_or_reread_event_lands_once(tmp_path: Path) -> None:
    events = [stored(singular(f"{i:064x}", "control")) for i in range(50)]
    SQLiteEventLog(tmp_path / "events.sqlite").append(events)
    assert extend(tmp_path).written == 50
    # A second log (another sink) holding the same ids, and the first log read from scratch:
    other = SQLiteEventLog(tmp_path / "other" / "events.sqlite")
    other.append([*events[:20], stored(singular("f" * 64, "treatment"))])
    lake = Lake(tmp_path / "lake")
    again = lake.extend(LogSource("other", other))
    assert (again.read, again.written, again.duplicates) == (21, 1, 20)
    lake.close()
    ids = [r[0] for r in lake_rows(tmp_path / "lake")]
    assert len(ids) == len(set(ids)) == 51


def test_error_events_count_towards_their_experiments_error_share(tmp_path: Path) -> None:
    raw = orjson.dumps(singular("d" * 64, "control")).decode()
    error = stored({"raw_event": raw, "message": "bad"}, stream="splitlab.error.validation")
    log = SQLiteEventLog(tmp_path / "events.sqlite")
    log.append([error, stored(singular("d" * 64, "control"))])
    extend(tmp_path)
    lake = Lake(tmp_path / "lake")
    tally = lake.tallies()[EXPERIMENT]
    assert (tally.events, tally.errors) == (1, 1)
    enrolled = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)  # received, not the client's dt
    assert tally.last_enrollment_us == enrolled.timestamp() * 1e6
    assert lake.events_through() == "2026-11-22T10:00:00.000Z"
    lake.close()


def test_holes_in_seq_are_read_again_until_they_are_old() -> None:
    position = advance(LogPosition(), [1, 2, 5], now=100.0)
    assert position.after == 5 and [g for g, _ in position.gaps] == [3, 4]
    assert position.start() == 2
    later = advance(position, [4, 5, 6], now=110.0)  # 4 committed late
    assert later.after == 6 and [g for g, _ in later.gaps] == [3]
    expired = advance(later, [], now=100.0 + 1000)
    assert expired.gaps == () and expired.start() == 6
    assert LogPosition.parse(later.dump()) == later


WRITER = """
import sys
from pathlib import Path
from splitlab.intake.sqlite_log import SQLiteEventLog
from splitlab.results.lake import Lake
from splitlab.results.sources import LogSource
data = Path(sys.argv[1])
lake = Lake(data / "lake", recent_ids=int(sys.argv[3]))
print("ready", flush=True)
lake.extend(LogSource("sqlite", SQLiteEventLog(data / "events.sqlite"), page=int(sys.argv[2])))
"""


@pytest.mark.slow
def test_a_writer_killed_mid_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    count = 30_000
    events = [stored(singular(f"{i:064x}", "control" if i % 2 else "treatment"))
              for i in range(count)]
    SQLiteEventLog(tmp_path / "events.sqlite").append(events)
    kills = 0
    for delay in (0.6, 0.9, 1.2, 1.5):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "2000", "2500"],
                                 stdout=subprocess.PIPE)
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            kills += 1
        child.wait()
    assert kills > 0
    extend(tmp_path)
    ids = [r[0] for r in lake_rows(tmp_path / "lake")]
    assert len(ids) == len(set(ids)) == count
    assert not list((tmp_path / "lake").rglob(".*.tmp"))
    # Compactions ran (and were killed) too: every id is in a run or the recent table, once.
    lake = Lake(tmp_path / "lake")
    assert lake.extend(LogSource("again", SQLiteEventLog(tmp_path / "events.sqlite"))).written == 0
    lake.close()
    assert list((tmp_path / "lake" / RUNS_DIR).iterdir())


def test_ids_moved_into_runs_still_stop_repeats(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    events = [stored(singular(f"{i:064x}", "control"), event_id=f"id-{i}") for i in range(100)]
    for start in range(0, 100, 10):  # a run every 3 batches, merged with the smaller ones
        log = SQLiteEventLog(tmp_path / f"log{start}.sqlite")
        log.append(events[start:start + 10])
        lake = Lake(root, recent_ids=25)
        assert lake.extend(LogSource(f"s{start}", log)).written == 10
        lake.close()
        log.close()
    runs = sorted(p.stat().st_size // 16 for p in (root / RUNS_DIR).glob("*.keys"))
    assert sum(runs) == 90 and len(runs) <= 3, runs  # the last 10 ids are still recent
    again = SQLiteEventLog(tmp_path / "again.sqlite")
    again.append([*events[::7], stored(singular("e" * 64, "treatment"), event_id="id-new")])
    lake = Lake(root, recent_ids=25)
    result = lake.extend(LogSource("again", again))
    lake.close()
    assert (result.written, result.duplicates) == (1, len(events[::7]))
    ids = [r[0] for r in lake_rows(root)]
    assert len(ids) == len(set(ids)) == 101


def test_opening_the_lake_removes_run_files_it_does_not_name(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    lake = Lake(root)
    lake.add_ids(np.array([id_key(str(uuid.uuid4())) for _ in range(5)], dtype=KEY))
    lake.close()
    named = sorted((root / RUNS_DIR).iterdir())
    assert [p.suffix for p in named] == [".bloom", ".keys"]
    for stray in ("run-0123456789abcdef.keys", "run-0123456789abcdef.bloom"):
        (root / RUNS_DIR / stray).write_bytes(b"\0" * 32)  # a compaction killed before commit
    Lake(root).close()
    assert sorted((root / RUNS_DIR).iterdir()) == named


def uuid_module_key(event_id: str) -> bytes:
    """The key as the uuid module defines it (the oracle): a UUID whose canonical text is the id
    gives its bytes; any other id, the first 16 bytes of its SHA-256."""
    try:
        parsed = uuid.UUID(event_id)
    except ValueError:
        return hashlib.sha256(event_id.encode()).digest()[:16]
    if str(parsed) == event_id:
        return parsed.bytes
    return hashlib.sha256(event_id.encode()).digest()[:16]


@given(st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()),
                 st.uuids().map(lambda u: "{" + str(u) + "}"), st.uuids().map(lambda u: u.hex),
                 st.uuids().map(lambda u: f"urn:uuid:{u}"), st.uuids().map(lambda u: f"{u}\n"),
                 st.text(max_size=40)))
def test_id_keys_are_the_uuid_modules(event_id: str) -> None:
    assert id_key(event_id) == uuid_module_key(event_id)


ID_TEXTS = st.one_of(
    st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: str(u)[:35] + "g"), st.uuids().map(lambda u: str(u).replace("-", "_")),
    st.uuids().map(lambda u: u.hex + "abcd"), st.text(min_size=36, max_size=36),
    st.text(max_size=40))


@given(st.lists(ID_TEXTS, max_size=30))
def test_batch_id_keys_are_the_uuid_modules(event_ids: list[str]) -> None:
    """The vectorised keys of a batch (canonical UUIDs decoded together) equal the oracle's,
    whatever else the batch holds (36-character ids that are not UUIDs, other lengths)."""
    assert id_keys(event_ids) == [uuid_module_key(i) for i in event_ids]


def test_batch_id_keys_of_canonical_uuids_only() -> None:
    event_ids = [str(uuid.uuid4()) for _ in range(1000)]
    assert id_keys(event_ids) == [uuid.UUID(i).bytes for i in event_ids]


def test_keys_ending_in_zero_bytes_are_found_in_runs(tmp_path: Path) -> None:
    """numpy's 16-byte strings drop trailing NULs when read back: the probe must not."""
    root = tmp_path / "lake"
    ids = [f"12345678-1234-4234-8234-1234567{i:03x}00" for i in range(3)] + [
        "00000000-0000-4000-8000-000000000000"]
    first = SQLiteEventLog(tmp_path / "first.sqlite")
    first.append([stored(singular("a" * 64, "control"), event_id=i) for i in ids])
    lake = Lake(root, recent_ids=1)
    assert lake.extend(LogSource("first", first)).written == 4
    assert lake.extend(LogSource("again", first)).duplicates == 4  # all in a run now
    lake.close()


def test_the_bloom_filter_never_rules_out_a_key_it_holds_and_rules_out_most_others() -> None:
    held = np.array([id_key(str(uuid.uuid4())) for _ in range(20_000)]
                    + [id_key(f"time-ordered-{i:012d}") for i in range(5_000)], dtype=KEY)
    bloom = lake_module._bloom(held)
    assert lake_module._in_bloom(bloom, held).all()
    others = np.array([id_key(str(uuid.uuid4())) for _ in range(20_000)], dtype=KEY)
    assert lake_module._in_bloom(bloom, others).mean() < 0.03
