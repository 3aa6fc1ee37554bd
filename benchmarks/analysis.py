"""Benchmark: counts + SRM + two metrics on DuckDB, beside plain pandas, over 10M and 50M events.

    .venv/bin/python benchmarks/analysis.py [--sizes 10000000,50000000] [--pandas-max 10000000]
        [--data /tmp/splitlab-bench-analysis] [--threads 2]

Simulated events (``splitlab.simulate``, about 8.4 events per unit) are written and
materialised once under ``--data`` (reused by later runs; never commit them). Then, per size, the
same computation runs on DuckDB (``splitlab.analysis.analyze`` with a count metric and a
proportion metric) and on pandas (``tests/unit/analysis/pandas_oracle.py``: read the Parquet
files into pandas, first enrollment per subject, mixed units, ``scipy.stats.chisquare``, Welch
t-tests); pandas runs only up to ``--pandas-max`` events. The results are checked to agree.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "unit" / "analysis"))

import pandas_oracle  # noqa: E402

from splitlab.analysis.analyze import Options, Report, analyze  # noqa: E402
from splitlab.analysis.engines import DuckDBEngine  # noqa: E402
from splitlab.analysis.materialize import MANIFEST, materialize  # noqa: E402
from splitlab.analysis.metrics import parse_catalog  # noqa: E402
from splitlab.core.model import Experiment  # noqa: E402
from splitlab.simulate import Simulation, simulate, write_events  # noqa: E402

EVENTS_PER_UNIT = 8.43  # measured mean of the simulator's default parameters
EXPERIMENT = Experiment.from_config({
    "name": "bench-experiment", "groups": ["control", "treatment"],
    "sample_rate": {"default": 1}, "user_identifier_type": "mw-user",
})
METRICS = parse_catalog({"metrics": [
    {"name": "clicks", "kind": "count", "filter": {"action": "click"}},
    {"name": "edited", "kind": "proportion", "filter": {"action": "edit_saved"}},
]})


def prepare(root: Path, size: int) -> Path:
    """Simulated, materialised events of about ``size`` events (made once, then reused)."""
    data = root / f"data-{size}"
    if (data / MANIFEST).exists():
        return data
    events = root / f"events-{size}.parquet"
    started = time.perf_counter()
    spec = Simulation(EXPERIMENT, round(size / EVENTS_PER_UNIT), seed=size,
                      lifts={"treatment": 1.02}, mixed_share=0.001)
    count = write_events(simulate(spec), events)
    simulated = time.perf_counter() - started
    materialize(events, data)
    print(f"  prepared {count:,} events: simulate {simulated:.1f} s, materialise "
          f"{time.perf_counter() - started - simulated:.1f} s", flush=True)
    events.unlink()
    return data


def run_duckdb(data: Path, threads: int) -> tuple[float, Report]:
    started = time.perf_counter()
    engine = DuckDBEngine(threads=threads)
    engine.load_events(data)
    report = analyze(engine, Options(EXPERIMENT.name, EXPERIMENT.groups), METRICS)
    engine.close()
    return time.perf_counter() - started, report


def run_pandas(data: Path) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    result = pandas_oracle.analyse(pandas_oracle.load(data), EXPERIMENT.name)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000000,50000000")
    parser.add_argument("--pandas-max", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/splitlab-bench-analysis"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"about {size:,} events", flush=True)
        data = prepare(args.data, size)
        seconds, report = run_duckdb(data, args.threads)
        manifest = json.loads((data / MANIFEST).read_text())
        events = sum(entry["events"] for entry in manifest["inputs"].values())
        print(f"  {events:,} events; duckdb ({args.threads} threads): {seconds:.2f} s, "
              f"{events / seconds / 1e6:.1f} M events/s; units {report.groups}, "
              f"SRM p {report.srm.p_value:.3g}", flush=True)
        if size > args.pandas_max:
            print(f"  pandas: not run (above --pandas-max {args.pandas_max:,})", flush=True)
            continue
        pandas_seconds, oracle = run_pandas(data)
        agree = oracle["groups"] == report.groups
        print(f"  pandas: {pandas_seconds:.2f} s; duckdb is {pandas_seconds / seconds:.1f}x "
              f"faster; unit counts agree: {agree}", flush=True)


if __name__ == "__main__":
    main()
