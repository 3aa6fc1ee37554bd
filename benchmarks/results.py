"""Benchmark: continuous results. A lake of N events plus new ones: the incremental lake run and
the results computation, beside a full recompute, in the same run (figures: docs/benchmarks.md).

    .venv/bin/python benchmarks/results.py [--events 5000000] [--new 100000]
        [--data /tmp/splitlab-bench-results] [--threads 2] [--repeat 1]

Preparing (not timed): the old lake is built without Python rows — simulated events
(``splitlab.simulate``, vectorised) written as Parquet and materialised (pyarrow) straight into
``<data>/lake`` in the lake's layout (``stream=<s>/day=<d>/part-*.parquet``); the lake's state
(``_state.sqlite``) is seeded as the lake writer would have left it: every event id's key in the
id index, the files, the per-experiment tallies, ``events_through``, and the SQLite log's
checkpoint at the log's start. ``--new`` more events are appended to the intake's SQLite event
log as the intake stores them (JSON bodies): another seed's simulation of the first ~``new / 8.4``
units again (unit ids start at 1 in both), over the same days — returning units, about half of
which bring an enrollment earlier than their first one in the lake (a late trigger: the hard
case for the unit store, which must recount those units).

Timed (each step opens the lake and the unit store and closes them, checkpoint included; the
process's collector tuned after start-up as the scheduler's processes do):

0. **first build of the unit table** (once per experiment, and again when its metrics change):
   :class:`UnitStore` folds the whole old lake in;
1. **incremental lake run**: :meth:`Lake.extend` over the SQLite log (the new events → Parquet,
   each id probed in the index of N ids);
2. **results computation**: what each scheduler run does per experiment — fold the lake's new
   files into the experiment's unit table and ``report`` from it (units per group, SRM, a count
   and a proportion metric); with ``--repeat N`` steps 1 and 2 are timed N times over the same
   new events, the lake's state and the unit store copied back between repeats (the first
   repeat is the one right after the build, with the coldest page cache; the ratio uses the
   median). Before the timed runs the file system is synced (``os.sync``, not timed): preparing
   leaves gigabytes of written data in the page cache, and its writeback slowed the lake run's
   fsyncs (measured: 3.08 s against 2.2–2.4 s right after writing 3 GB elsewhere);
3. **time to first results after an event arrives**: one more event appended to the log, then
   a lake run and the results computation (1 + 2 for one event);
4. **full recompute**: the lake rebuilt from every event (the N old and the new ones, the fastest
   path splitlab has: ``materialize`` of the Parquet files, vectorised) and the computation over
   the whole lake (load into DuckDB and ``analyze``). Its report must equal the incremental one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from splitlab.analysis.analyze import Options, aggregates_of, analyze, report
from splitlab.analysis.engines import DuckDBEngine
from splitlab.analysis.materialize import MANIFEST, materialize
from splitlab.analysis.metrics import parse_catalog
from splitlab.core.model import Experiment
from splitlab.intake.export import open_reader
from splitlab.intake.sinks import StoredEvent
from splitlab.intake.sqlite_log import SQLiteEventLog
from splitlab.process import tune_collector
from splitlab.results.lake import KEY, LAKE_DIR, RUNS_DIR, STATE_FILE, Lake, uuid_rows
from splitlab.results.sources import LogPosition, LogSource
from splitlab.results.units import STORE_FILE, UnitStore
from splitlab.simulate import Simulation, simulate, write_events
from splitlab.simulate.arrow import without_nulls

EVENTS_PER_UNIT = 8.43  # measured mean of the simulator's default parameters
EXPERIMENT = Experiment.from_config({
    "name": "bench-results", "groups": ["control", "treatment"],
    "sample_rate": {"default": 1}, "user_identifier_type": "mw-user",
})
METRICS = parse_catalog({"metrics": [
    {"name": "clicks", "kind": "count", "filter": {"action": "click"}},
    {"name": "edited", "kind": "proportion", "filter": {"action": "edit_saved"}},
]})


def spec(units: int, first_seed: int) -> Simulation:
    return Simulation(EXPERIMENT, units, seed=first_seed, lifts={"treatment": 1.02})


def uuid_keys(ids: pa.ChunkedArray) -> np.ndarray:
    """The lake's 16-byte keys of canonical UUID texts (the simulator's ids), vectorised."""
    text = ids.combine_chunks()
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset:][: len(text) + 1]
    assert (np.diff(offsets) == 36).all()
    chars = np.frombuffer(text.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    keys, canonical = uuid_rows(chars.reshape(-1, 36))
    assert canonical.all()
    return keys


def seed_state(lake_root: Path) -> int:
    """Seed ``_state.sqlite`` for a lake whose Parquet files were written without the writer."""
    files = sorted(lake_root.rglob("*.parquet"))
    db = duckdb.connect()
    pattern = str(lake_root / "**" / "*.parquet")
    ids = db.sql(f"SELECT event_id FROM read_parquet('{pattern}') ORDER BY event_id"
                 ).to_arrow_table().column(0)
    tallies = db.execute(
        f"SELECT experiment, count(*), max(CASE WHEN action = 'experiment_enrollment' THEN ts "
        f"ELSE 0 END), max(ts) FROM read_parquet('{pattern}') WHERE experiment IS NOT NULL "
        "GROUP BY experiment").fetchall()
    counts = [db.execute(f"SELECT count(*) FROM read_parquet('{f}')").fetchone() for f in files]
    db.close()
    keys = uuid_keys(ids)
    lake = Lake(lake_root)
    lake.add_ids(keys.view(KEY).ravel())
    lake.close()
    state = sqlite3.connect(lake_root / STATE_FILE, isolation_level=None)
    state.execute("PRAGMA journal_mode = WAL")
    state.execute("BEGIN")
    state.executemany("INSERT INTO files (file, source, rows) VALUES (?, 'seed', ?)",
                      [(str(f.relative_to(lake_root)), c[0] if c else 0)
                       for f, c in zip(files, counts, strict=True)])
    state.executemany("INSERT INTO tallies VALUES (?, ?, 0, ?)",
                      [(name, events, last) for name, events, last, _ in tallies])
    through = max(last for *_, last in tallies)
    state.execute("INSERT INTO facts VALUES ('events_through', ?)",
                  (time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(through / 1e6)),))
    state.execute("INSERT INTO checkpoints VALUES ('sqlite', ?)", (LogPosition().dump(),))
    state.execute("COMMIT")
    state.close()
    return len(keys)


def append_events(log_path: Path, table: pa.Table) -> int:
    """Append the simulated events to the intake's SQLite log, as the intake stores them."""
    log = SQLiteEventLog(log_path)
    events = []
    for row in table.to_pylist():
        event = without_nulls(row)
        meta = event["meta"]
        events.append(StoredEvent(meta["id"], meta["stream"], meta["dt"], orjson.dumps(event)))
    for start in range(0, len(events), 10_000):
        log.append(events[start:start + 10_000])
    log.close()
    return len(events)


OPTIONS = Options(EXPERIMENT.name, EXPERIMENT.groups)


def compute(lake_root: Path, threads: int) -> tuple[float, dict[str, int]]:
    """The computation over the whole lake (load into DuckDB, ``analyze``); its time and the
    units per group."""
    started = time.perf_counter()
    engine = DuckDBEngine(threads=threads)
    engine.load_events(lake_root)
    result = analyze(engine, OPTIONS, METRICS)
    engine.close()
    assert result.units_total > 0
    return time.perf_counter() - started, result.groups


def fold_and_report(lake_root: Path, threads: int) -> tuple[float, dict[str, int]]:
    """The scheduler's per-experiment computation: fold the new files into the unit table and
    report from it; its time and the units per group (the stores opened and closed around it)."""
    started = time.perf_counter()
    lake = Lake(lake_root)
    store = UnitStore(lake_root, threads=threads)
    try:
        store.update(lake, EXPERIMENT.name, aggregates_of(METRICS)[0])
        result = report(store, OPTIONS, METRICS)
    finally:
        store.close()
        lake.close()
    assert result.units_total > 0
    return time.perf_counter() - started, result.groups


def extend(data: Path) -> tuple[float, int]:
    started = time.perf_counter()
    lake = Lake(data / LAKE_DIR)
    source = LogSource("sqlite", open_reader(data, None))
    try:
        written = lake.extend(source).written
    finally:
        source.close()
        lake.close()
    return time.perf_counter() - started, written


SIZES_FILE = "sizes.json"
"""In the snapshot: ``[--events, --new]`` of the run that prepared the data."""


class Snapshot:
    """The lake's state, the unit store and the SQLite log as they are right after the first
    build, to put back so that the same incremental run can be timed again (``--repeat``,
    ``--reuse``): the Parquet files and id runs made since are deleted, the databases copied
    back. A run that merged id runs (more than ``RECENT_IDS`` new ids) cannot be undone this way
    and stops the benchmark."""

    def __init__(self, data: Path) -> None:
        self.data, self.lake_root = data, data / LAKE_DIR
        self.saved = data / "snapshot"

    def _databases(self) -> list[Path]:
        return [*(p for p in self.lake_root.iterdir()
                  if p.name.startswith((STATE_FILE, STORE_FILE))),
                *self.data.glob("events.sqlite*")]

    def _listed(self) -> tuple[list[str], list[str]]:
        return ([str(p) for p in self.lake_root.rglob("*.parquet")],
                [str(p) for p in (self.lake_root / RUNS_DIR).iterdir()])

    def take(self) -> None:
        shutil.rmtree(self.saved, ignore_errors=True)
        self.saved.mkdir()
        for path in self._databases():
            name = path.relative_to(self.data).as_posix().replace("/", "~")
            shutil.copy2(path, self.saved / name)
        (self.saved / "files.json").write_bytes(orjson.dumps(self._listed()))

    def exists(self) -> bool:
        return (self.saved / "files.json").is_file() and (self.saved / SIZES_FILE).is_file()

    def restore(self) -> None:
        listed: list[list[str]] = orjson.loads((self.saved / "files.json").read_bytes())
        files, runs = set(listed[0]), set(listed[1])
        now_files, now_runs = (set(names) for names in self._listed())
        if not runs <= now_runs:
            raise SystemExit("the run merged id runs: it cannot be repeated; use fewer --new")
        for name in (now_files - files) | (now_runs - runs):
            Path(name).unlink()
        for path in self._databases():
            path.unlink()
        for path in self.saved.iterdir():
            if path.name not in ("files.json", SIZES_FILE):
                shutil.copy2(path, self.data / path.name.replace("~", "/"))
        os.sync()  # the copies' writeback is not the timed run's


def prepare(args: argparse.Namespace) -> None:
    """The old lake, its state, the new events in the SQLite log, and the first build of the
    unit table (printed, not part of the incremental figures)."""
    shutil.rmtree(args.data, ignore_errors=True)
    args.data.mkdir(parents=True)
    started = time.perf_counter()
    old = write_events(simulate(spec(round(args.events / EVENTS_PER_UNIT), 1)),
                       args.data / "old.parquet")
    lake_root = args.data / LAKE_DIR
    materialize(args.data / "old.parquet", lake_root)
    (lake_root / MANIFEST).unlink()
    seeded = seed_state(lake_root)
    new_table = pa.concat_tables(simulate(spec(round(args.new / EVENTS_PER_UNIT), 2)))
    write_events(iter([new_table]), args.data / "new.parquet")
    new = append_events(args.data / "events.sqlite", new_table)
    print(f"  prepared (not timed, {time.perf_counter() - started:.0f} s): {old:,} old events "
          f"({seeded:,} ids seeded), {new:,} new in the SQLite log", flush=True)
    tune_collector()  # as the results worker and the service's workers do after start-up
    build_s, _ = fold_and_report(lake_root, args.threads)
    print(f"first build of the unit table over the old lake: {build_s:.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--new", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/splitlab-bench-results"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1,
                        help="time the incremental run this many times over the same new events "
                             "(the lake, unit store and log put back between them)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the prepared data (with its snapshot) for --reuse")
    parser.add_argument("--reuse", action="store_true",
                        help="time only the incremental runs, over data a --keep run left "
                             "(no preparing, no first build, no full recompute)")
    args = parser.parse_args()
    snapshot = Snapshot(args.data)
    if args.reuse:  # the sizes are those of the kept data, whatever --events and --new say
        if not snapshot.exists():
            raise SystemExit(f"--reuse: no data kept in {args.data} (run with --keep first)")
        args.events, args.new = orjson.loads((snapshot.saved / SIZES_FILE).read_bytes())
    print(f"load average {os.getloadavg()[0]:.1f}; old lake {args.events:,} events, "
          f"{args.new:,} new" + (" (the data --keep left)" if args.reuse else ""), flush=True)
    if args.reuse:
        snapshot.restore()
    else:
        prepare(args)
        if args.keep or args.repeat > 1:
            snapshot.take()
            (snapshot.saved / SIZES_FILE).write_bytes(orjson.dumps([args.events, args.new]))
        os.sync()  # preparing leaves gigabytes to write back, which would slow the timed fsyncs
    lake_root = args.data / LAKE_DIR
    runs, computes, totals = [], [], []
    for attempt in range(args.repeat):
        if attempt:
            snapshot.restore()
        run_s, written = extend(args.data)
        compute_s, groups = fold_and_report(lake_root, args.threads)
        runs.append(run_s)
        computes.append(compute_s)
        totals.append(run_s + compute_s)
        print(f"incremental lake run ({written:,} new events -> Parquet): {run_s:.2f} s; "
              f"results computation (fold the new files into the unit table, report): "
              f"{compute_s:.2f} s; incremental total {run_s + compute_s:.2f} s "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    if args.repeat > 1:
        print(f"incremental totals over {args.repeat} repeats: min {min(totals):.2f} s, "
              f"median {float(np.median(totals)):.2f} s, max {max(totals):.2f} s", flush=True)
    if args.reuse:
        return

    new_table = pq.read_table(args.data / "new.parquet")
    one = new_table.slice(0, 1).to_pylist()[0]
    one["meta"]["id"] = "00000000-0000-4000-8000-000000000001"
    append_events(args.data / "events.sqlite", pa.Table.from_pylist([one], new_table.schema))
    first_run, first_written = extend(args.data)
    first_compute, first_groups = fold_and_report(lake_root, args.threads)
    first = first_run + first_compute
    print(f"time to first results after one event arrives: {first:.2f} s "
          f"(lake run {first_run:.2f} s, {first_written} event; computation "
          f"{first_compute:.2f} s)", flush=True)

    full = args.data / "full"
    shutil.rmtree(full, ignore_errors=True)
    started = time.perf_counter()
    materialize(args.data / "old.parquet", full)
    materialize(args.data / "new.parquet", full)
    rebuild_s = time.perf_counter() - started
    full_compute, full_groups = compute(full, args.threads)
    assert full_groups == first_groups, (full_groups, first_groups)
    assert sum(groups.values()) <= sum(full_groups.values())
    full_s = rebuild_s + full_compute
    incremental = float(np.median(totals))
    run_s, compute_s = float(np.median(runs)), float(np.median(computes))
    print(f"full recompute: {full_s:.2f} s (rebuild the lake {rebuild_s:.2f} s, computation "
          f"{full_compute:.2f} s)", flush=True)
    print(f"incremental run + computation {incremental:.2f} s (the median): "
          f"{full_s / incremental:.1f}x faster than the full recompute; lake run alone "
          f"{rebuild_s / run_s:.1f}x faster than the rebuild; the computation is "
          f"{compute_s / incremental:.0%} of the incremental total", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.keep:
        shutil.rmtree(full)
        snapshot.restore()  # as it was after the first build, for --reuse
    else:
        shutil.rmtree(args.data, ignore_errors=True)


if __name__ == "__main__":
    main()
