"""Benchmark of a remote sink's outage under full load: answers during it, replay after it.

For each sink (a private ``nats-server -js`` or a private PostgreSQL cluster, started by the
integration tests' helpers, never the machine's shared servers) it starts ``splitlab serve
--workers 2`` writing to that sink and drives ``POST /v1/events`` with ``wrk`` and the shared
workload (``../shared/bench/intake-web-base.lua``, batches of ``--batch`` events without
``meta.id``) for the whole run, in four phases, one ``wrk`` process each (stopped with SIGINT,
so each prints its own figures; a wrapper script also prints wrk's latency histogram, merged
into the whole run's distribution; like wrk's own percentiles it is corrected for coordinated
omission, so "over the deadline" is a share of that distribution, not a count of requests):

1. ``before``: ``--before`` seconds with the sink up. Its accepted event rate is the baseline.
2. ``outage``: the sink is killed (SIGKILL) for ``--outage`` seconds, then restarted; the phase
   ends when the sink accepts connections again.
3. ``replay``: the load goes on until the spool is empty (at most ``--limit`` seconds): the time
   to empty it and the replay rate (spool depth at the restart / that time) against the
   baseline intake rate.
4. ``after``: ``--settle`` more seconds with an empty spool.

Also printed: the spool depth (events in ``spool-<sink>.sqlite``) and the server's resident
memory (supervisor and workers together), sampled every 0.5 s; per phase the slowest answers and
the non-201 answers against the deadline (``SPLITLAB_EVENTS_SINK_TIMEOUT``, ``--deadline``). At
the end, once the spool is empty, every event id is read back from the sink: stored must be at
least the acknowledged events (201 answers x batch; requests in flight when a phase's wrk stops
are stored but not counted), and no id may be stored twice.

    nice -n 19 .venv/bin/python benchmarks/outage.py [--sink jetstream,postgresql]
        [--before 10] [--outage 15] [--limit 120] [--settle 5] [--connections 32] [--batch 50]
        [--deadline 0.5] [--lua PATH]
"""

from __future__ import annotations

import argparse
import bisect
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/integration: the private servers and the outage helpers

from tests.integration.outage_helpers import (  # noqa: E402
    Watch,
    serve_env,
    spool_depth,
    stored_ids,
    wait_until_drained,
)
from tests.integration.private_servers import (  # noqa: E402
    PrivateNats,
    PrivatePostgres,
    PrivateServer,
)
from tests.integration.serve_helpers import free_port, server  # noqa: E402

SHARED_LUA = ROOT.parent / "shared/bench/intake-web-base.lua"
HISTOGRAM_LUA = """dofile({script!r})
local workload_done = done
function done(summary, latency, requests)
  workload_done(summary, latency, requests)
  for i = 1, #latency do
    local micros, count = latency(i)
    io.write(string.format("LATENCY %d %d\\n", micros, count))
  end
end
"""


@dataclass
class Phase:
    """One wrk process, from its start until :meth:`stop`; then its figures."""

    name: str
    process: subprocess.Popen[str]
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    ok: int = 0
    non201: int = 0
    errors: int = 0
    latency: Counter[int] = field(default_factory=Counter)  # microseconds -> requests

    def stop(self) -> Phase:
        self.process.send_signal(signal.SIGINT)
        output = self.process.communicate(timeout=60)[0]
        self.seconds = time.monotonic() - self.started
        for line in output.splitlines():
            words = line.split()
            if line.startswith("LATENCY "):
                self.latency[int(words[1])] += int(words[2])
            elif line.startswith("RESULT "):
                fields = dict(word.split("=") for word in words[1:])
                self.ok, self.non201 = int(fields["ok"]), int(fields["non201"])
                self.errors = int(fields["errors"])
        return self


def start_wrk(name: str, url: str, script: Path, args: argparse.Namespace) -> Phase:
    command = ["wrk", "-t1", f"-c{args.connections}", "-d3600s", "--timeout", "30s", "-s",
               str(script), url, "--", str(args.batch)]
    return Phase(name, subprocess.Popen(command, stdout=subprocess.PIPE, text=True))


def percentile(latency: Counter[int], share: float) -> float:
    """The latency (ms) that ``share`` of the answers did not exceed."""
    values = sorted(latency)
    cumulative, total = [], 0
    for value in values:
        total += latency[value]
        cumulative.append(total)
    if not total:
        return float("nan")
    return values[bisect.bisect_left(cumulative, share * total)] / 1000


def describe(name: str, phase_list: list[Phase], batch: int, deadline: float) -> str:
    latency: Counter[int] = sum((p.latency for p in phase_list), Counter())
    seconds = sum(p.seconds for p in phase_list)
    ok = sum(p.ok for p in phase_list)
    late = sum(n for micros, n in latency.items() if micros > deadline * 1e6)
    late_share = late / max(latency.total(), 1)
    non201, errors = sum(p.non201 for p in phase_list), sum(p.errors for p in phase_list)
    return (f"{name:<9} {seconds:5.1f} s  {ok * batch / seconds:8,.0f} events/s accepted  "
            f"p50 {percentile(latency, 0.5):6.1f} ms  p99 {percentile(latency, 0.99):6.1f} ms  "
            f"p99.9 {percentile(latency, 0.999):6.1f} ms  max {max(latency, default=0) / 1000:6.1f}"
            f" ms  over the deadline {late_share:.2%}  non-201 {non201}  socket errors {errors}")


def private_sink(sink: str, tmp: Path) -> tuple[PrivateServer, str]:
    if sink == "jetstream":
        nats = PrivateNats(tmp / "nats")
        return nats, nats.url
    cluster = PrivatePostgres()
    cluster.fresh_database(f"outage_{uuid.uuid4().hex[:12]}")
    return cluster, cluster.url


def run(sink: str, args: argparse.Namespace, script: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="splitlab-outage-") as name:
        tmp = Path(name)
        remote, url = private_sink(sink, tmp)
        try:
            remote.start()
            measure(sink, remote, url, tmp, args, script)
        finally:
            remote.stop()
            if isinstance(remote, PrivatePostgres):
                remote.remove()


def measure(sink: str, remote: PrivateServer, url: str, tmp: Path, args: argparse.Namespace,
            script: Path) -> None:
    data, port = tmp / "data", free_port()
    target = f"http://127.0.0.1:{port}/v1/events"
    print(f"\n{sink}: splitlab serve --workers 2, deadline {args.deadline} s; wrk -t1 "
          f"-c{args.connections}, batch {args.batch}; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    env = serve_env(sink, url, args.deadline)
    with (server(data, port, env=env, log=tmp / "serve.log") as process,
          Watch(process.pid, data, sink, interval=0.5) as watch):
        phase = start_wrk("before", target, script, args)
        time.sleep(args.before)
        phases = [phase.stop()]
        phase = start_wrk("outage", target, script, args)
        remote.send(signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(args.outage)
        restarting = time.monotonic()
        remote.start()
        ready = time.monotonic()
        phases.append(phase.stop())
        phase = start_wrk("replay", target, script, args)
        depth = spool_depth(data, sink)
        while spool_depth(data, sink) > 0 and time.monotonic() - ready < args.limit:
            time.sleep(0.1)
        drained = time.monotonic()
        left = spool_depth(data, sink)
        phases.append(phase.stop())
        phase = start_wrk("after", target, script, args)
        time.sleep(args.settle)
        phases.append(phase.stop())
        ended = time.monotonic()
        try:
            quiet = f"{wait_until_drained(data, sink, args.limit):.1f} s"
        except AssertionError as error:
            quiet = f"not within {args.limit:.0f} s ({error})"
    print(f"sink killed at {killed - watch.times[0]:.1f} s, restarted after {args.outage:.0f} s, "
          f"accepting connections {ready - restarting:.1f} s later")
    for one in phases:
        print(describe(one.name, [one], args.batch, args.deadline))
    print(describe("whole run", phases, args.batch, args.deadline))
    before_rate = phases[0].ok * args.batch / phases[0].seconds
    if left:
        print(f"spool NOT empty {args.limit:.0f} s after the restart: {left:,} of {depth:,} "
              "events still in it")
    else:
        replay = depth / (drained - ready)
        print(f"spool at the restart {depth:,} events, empty {drained - ready:.1f} s later with "
              f"the load going on: replay {replay:,.0f} events/s net = {replay / before_rate:.2f}"
              f" x the intake rate before the outage ({before_rate:,.0f} events/s)")
    marks = [("before", killed), ("outage", ready), ("replay", drained), ("after", ended)]
    print("spool depth / RSS every 2.5 s (s since start: events, MB):")
    start = watch.times[0]
    samples = list(zip(watch.times, watch.samples, strict=True))
    print("  " + "  ".join(f"{t - start:.1f}: {d:,}, {r / 2**20:.0f}" for t, (r, d) in
                           samples[::5]))
    bound = start
    for label, until in marks:
        rss = [r for t, (r, _) in samples if bound <= t < until]
        bound = until
        if rss:
            print(f"RSS {label:<7} {min(rss) / 2**20:.0f}-{max(rss) / 2**20:.0f} MB")
    print(f"after the load stopped, the spool was empty in {quiet}")
    ids = Counter(stored_ids(sink, url))
    acked = sum(p.ok for p in phases) * args.batch
    twice = sum(1 for n in ids.values() if n > 1)
    print(f"stored {ids.total():,} events ({len(ids):,} distinct ids, {twice} stored twice) >= "
          f"acknowledged {acked:,}: {'yes' if len(ids) >= acked and not twice else 'NO'}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sink", default="jetstream,postgresql")
    parser.add_argument("--before", type=float, default=10)
    parser.add_argument("--outage", type=float, default=15)
    parser.add_argument("--limit", type=float, default=120,
                        help="seconds after the restart to wait for the spool to empty")
    parser.add_argument("--settle", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--deadline", type=float, default=0.5)
    parser.add_argument("--lua", type=Path, default=SHARED_LUA)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    if not args.lua.is_file():
        raise SystemExit(f"the workload script {args.lua} is absent")
    with tempfile.TemporaryDirectory(prefix="splitlab-outage-lua-") as name:
        script = Path(name) / "histogram.lua"
        script.write_text(HISTOGRAM_LUA.format(script=str(args.lua.resolve())))
        for sink in args.sink.split(","):
            run(sink, args, script)


if __name__ == "__main__":
    main()
