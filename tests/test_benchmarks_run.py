"""Every benchmark still runs: each is started with tiny sizes and must finish cleanly.

This checks that the scripts work against the current code; it measures nothing (figures come
from full runs, recorded in docs/benchmarks.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, unavailable
from tests.integration.private_servers import NATS_SERVER

pytestmark = pytest.mark.slow

CASES = {
    "assign.py": ["--n", "3000", "--bulk-n", "30000"],
    "sdk.py": ["--requests", "20", "--calls", "200", "--repeats", "1"],
    "client_payload.py": [],
    "web.py": ["--requests", "5", "--repeats", "1"],
    "analysis.py": ["--sizes", "20000", "--pandas-max", "20000"],
    "config_api.py": ["--seconds", "1", "--connections", "2"],
    "intake.py": ["--duration", "1", "--connections", "2", "--warmup", "1"],
    "intake_decode.py": ["--batch", "5", "--repeat", "1"],
    "results.py": ["--events", "20000", "--new", "2000"],
    "outage.py": ["--sink", "jetstream", "--before", "1", "--outage", "1", "--settle", "1",
                  "--limit", "60", "--connections", "4"],
}
NEEDS_WRK = {"config_api.py", "intake.py", "outage.py"}
SHARED_LUA = ROOT.parent / "shared" / "bench" / "intake-web-base.lua"


@pytest.mark.parametrize("script", sorted(CASES))
def test_the_benchmark_runs(script: str, tmp_path: Path) -> None:
    if script in NEEDS_WRK and shutil.which("wrk") is None:
        unavailable("wrk (Debian package) is not installed")
    if script == "outage.py" and not (SHARED_LUA.is_file() and os.access(NATS_SERVER, os.X_OK)):
        unavailable(f"the outage benchmark needs {NATS_SERVER} and {SHARED_LUA}")
    args = list(CASES[script])
    if script in ("analysis.py", "results.py"):
        args += ["--data", str(tmp_path / "data")]
    done = run(script, args)
    if done.returncode != 0 and script in NEEDS_WRK:
        # Once, in a full run on the 2-core machine, the intake benchmark's 1-second load run
        # failed and could not be reproduced in a dozen runs since; a second try tells a broken
        # script (fails twice, with its output below) from a moment of contention.
        print(f"first try failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        done = run(script, args)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.strip(), "the benchmark printed no figures"


def run(script: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
