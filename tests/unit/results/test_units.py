"""The unit store gives the full computation's report: a lake extended in several steps (re-sent
events, a unit in two groups, events before their unit's enrollment, enrollments arriving late
and earlier than the first one seen), the report after each step equal to ``analyze`` over the
whole lake."""

from __future__ import annotations

import hashlib
import math
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from splitlab.analysis.analyze import Options, aggregates_of, analyze, report
from splitlab.analysis.engines import DuckDBEngine
from splitlab.analysis.metrics import parse_catalog
from splitlab.analysis.report import to_dict
from splitlab.intake.sinks import StoredEvent
from splitlab.intake.sqlite_log import SQLiteEventLog
from splitlab.results.lake import Lake
from splitlab.results.sources import LogSource
from splitlab.results.units import UnitStore

EXPERIMENT = "incremental-2026"
OPTIONS = Options(EXPERIMENT, ("control", "treatment"))
CATALOG = parse_catalog({"metrics": [
    {"name": "clicks", "kind": "count", "filter": {"action": "click"}},
    {"name": "edited", "kind": "proportion", "filter": {"action": "edit_saved"}},
    {"name": "spent", "kind": "sum", "filter": {"action": "click"}},
    {"name": "per-edit", "kind": "ratio", "numerator": {"kind": "count", "filter": {
        "action": "click"}}, "denominator": {"kind": "count", "filter": {"action": "edit_saved"}}},
    {"name": "clicks-cuped", "kind": "count", "filter": {"action": "click"},
     "cuped": {"pre_days": 1}},
]})
DAY = 86_400


def event(subject: int, group: str | None, action: str, second: int,
          event_id: str | None = None) -> StoredEvent:
    event_id = event_id or str(uuid.UUID(int=random.getrandbits(128)))
    dt = f"2026-11-{20 + second // DAY:02d}T{second % DAY // 3600:02d}:" \
         f"{second % 3600 // 60:02d}:{second % 60:02d}.000Z"
    fragment: dict[str, Any] = {"enrolled": EXPERIMENT,
                                "subject_id": hashlib.sha256(f"{subject}".encode()).hexdigest(),
                                "sampling_unit": "mw-user"}
    if group is not None:
        fragment["assigned"] = group
    body = {"action": action, "dt": dt, "action_context": str(random.randint(0, 9) / 4),
            "experiment": fragment, "meta": {"id": event_id, "dt": dt, "stream": "web"}}
    return StoredEvent(event_id, "web", dt, orjson.dumps(body))


def steps(seed: int) -> list[list[StoredEvent]]:
    """Four batches of events of 120 units."""
    random.seed(seed)
    batches: list[list[StoredEvent]] = [[] for _ in range(4)]
    for subject in range(120):
        group = random.choice(["control", "treatment"])
        enrolled = random.randint(DAY, 3 * DAY)
        arrives = random.randint(0, 3)
        batches[arrives].append(event(subject, group, "experiment_enrollment", enrolled))
        for _ in range(random.randint(0, 6)):
            action = random.choice(["click", "click", "edit_saved", "page_view"])
            when = enrolled + random.randint(-DAY // 2, DAY)  # some before the enrollment
            batches[random.randint(0, 3)].append(event(subject, random.choice(
                [group, group, group, None]), action, when))
        if subject % 10 == 0:  # a second enrollment, into the other group, later
            other = "treatment" if group == "control" else "control"
            batches[3].append(event(subject, other, "experiment_enrollment", enrolled + 60))
        if subject % 5 == 1:  # an earlier enrollment arriving in a later batch
            batches[min(arrives + 1, 3)].append(
                event(subject, group, "experiment_enrollment", enrolled - DAY // 3))
        if subject % 17 == 2:  # an enrollment at the same second into another group
            batches[3].append(event(subject, "aaa-group", "experiment_enrollment", enrolled))
    resent = batches[0][:5] + batches[1][:5]
    batches[2] += resent  # re-sent events: the lake keeps them once
    batches[3] += [resent[0]]
    return batches


def close(left: Any, right: Any, where: str = "") -> None:
    if isinstance(left, dict):
        assert left.keys() == right.keys(), where
        for key in left:
            close(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            close(a, b, f"{where}[{index}]")
    elif isinstance(left, float) and isinstance(right, float):
        assert math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12), (where, left, right)
    else:
        assert left == right, (where, left, right)


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_the_unit_store_report_equals_the_full_computation_after_each_step(
        tmp_path: Path, seed: int) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite")
    lake = Lake(tmp_path / "lake")
    store = UnitStore(lake.root, threads=1)
    aggregates, _ = aggregates_of(CATALOG)
    try:
        for number, batch in enumerate(steps(seed)):
            log.append(batch)
            lake.extend(LogSource("sqlite", log))
            assert store.update(lake, EXPERIMENT, aggregates) > 0
            incremental = to_dict(report(store, OPTIONS, CATALOG))
            engine = DuckDBEngine(threads=1)
            engine.load_events(lake.root)
            full = to_dict(analyze(engine, OPTIONS, CATALOG))
            engine.close()
            close(incremental, full, f"step {number}")
        assert full["units_in_multiple_groups"] > 0
        assert store.update(lake, EXPERIMENT, aggregates) == 0  # nothing new: nothing folded
        store.close()
        store = UnitStore(lake.root, threads=1)  # a changed catalog rebuilds from the lake
        assert store.update(lake, EXPERIMENT, aggregates[:1]) == len(lake.files())
        close(to_dict(report(store, OPTIONS, CATALOG[:1])),
              to_dict(analyze(_loaded(lake.root), OPTIONS, CATALOG[:1])))
    finally:
        store.close()
        lake.close()
        log.close()


def _loaded(root: Path) -> DuckDBEngine:
    engine = DuckDBEngine(threads=1)
    engine.load_events(root)
    return engine


def test_a_second_process_can_build_a_store_while_another_holds_the_file(tmp_path: Path) -> None:
    """Every worker of a multi-worker service builds a scheduler, and with it a store; DuckDB
    lets one process hold the file, so only the store that is used opens it."""
    lake = Lake(tmp_path / "lake")
    holder = UnitStore(lake.root, threads=1)
    holder.query("SELECT 1")  # opens the file
    script = ("import sys; from pathlib import Path; from splitlab.results.units import UnitStore;"
              "UnitStore(Path(sys.argv[1]), threads=1).close(); print('built')")
    try:
        built = subprocess.run([sys.executable, "-c", script, str(lake.root)],
                               capture_output=True, text=True, timeout=60)
        assert built.returncode == 0 and built.stdout.strip() == "built", built.stderr
        used = subprocess.run(
            [sys.executable, "-c", script.replace(".close()", ".query('SELECT 1')"),
             str(lake.root)], capture_output=True, text=True, timeout=60)
        assert used.returncode != 0 and "lock" in used.stderr.lower()  # the file is still held
    finally:
        holder.close()
        lake.close()


def _duckdb_memory_limit(store: UnitStore) -> float:
    """The store's DuckDB memory limit in MiB, read back from DuckDB (it prints ``5.9 GiB``)."""
    ((text,),) = store.query("SELECT current_setting('memory_limit')")
    number, unit = str(text).split()
    return float(number) * {"MiB": 1, "GiB": 1024}[unit]


def test_the_store_caps_duckdb_memory_at_a_quarter_of_the_machine_unless_told(
        tmp_path: Path) -> None:
    """DuckDB's own default (80% of the memory) let a first build over a large lake push the
    lake and the intake's files out of the page cache."""
    total_kib = next(int(line.split()[1]) for line in
                     Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal:"))
    limit = Path("/sys/fs/cgroup/memory.max")
    if limit.is_file() and limit.read_text().strip().isdigit():
        total_kib = min(total_kib, int(limit.read_text()) // 1024)
    lake = Lake(tmp_path / "lake")
    stores = [UnitStore(lake.root, threads=1), UnitStore(lake.root, threads=1,
                                                         memory_limit="300MiB")]
    try:
        quarter = total_kib / 1024 / 4
        assert abs(_duckdb_memory_limit(stores[0]) - quarter) <= max(quarter * 0.02, 1)
        stores[0].close()
        assert _duckdb_memory_limit(stores[1]) == 300
    finally:
        for store in stores:
            store.close()
        lake.close()


def test_the_schedulers_events_engine_is_capped_too_and_spills_beside_the_lake(
        tmp_path: Path) -> None:
    from splitlab.registry.store import Registry
    from splitlab.results.runner import ENGINE_SPILL, RunnerConfig, build_scheduler

    registry = Registry.open(None, tmp_path)
    scheduler = build_scheduler(registry, RunnerConfig(tmp_path, memory_limit="300MiB"))
    engine = scheduler.engine_factory()
    try:
        ((limit, spill),) = engine.query("SELECT current_setting('memory_limit'), "
                                         "current_setting('temp_directory')")
        assert (limit, spill) == ("300.0 MiB", str(tmp_path / "lake" / ENGINE_SPILL))
    finally:
        engine.close()
        scheduler.close()
        registry.close()
