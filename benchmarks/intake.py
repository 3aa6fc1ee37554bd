"""Benchmark of POST /v1/events: events/s and latency with durability on.

Starts ``splitlab serve`` (several uvicorn workers, each writing its shard of the embedded SQLite
log, WAL with synchronous=FULL, answer after commit) on loopback and drives it with ``wrk``
(Debian's), for batches of 1 and of 50 events, after a 3 s warm-up. The workload is the shared
one, ``../shared/bench/intake-web-base.lua`` (web base 1.3.0 events without ``meta.id``; ``--lua``
names another copy), when it is there; otherwise a built-in body. Baselines in the same run:
``GET /healthz`` of the same server (the HTTP stack's ceiling) and the SQLite log alone (two
processes appending batches of 500, to one shared file and to a shard each). Each run also prints
the CPU time the server's processes used per request, which other load on the machine disturbs
less than the rates. After each run the log is counted to check that every 201 is stored.
``--peer URL`` runs the same workload against another intake already listening there (EventGate,
set up from its own README) in the same run, alternating with splitlab ``--rounds`` times per
batch size (ABBA: the peer goes first in every other round), and prints each pair's ratio and
the median ratio (the machine's speed drifts; pairs
taken minutes apart do not compare).
Reference anchor (issue 11: EventGate 1.8.4, file output, ``-n 2`` workers, the shared workload on
one of these 2-core machines): 5,700-7,300 single-event req/s (p99 21 ms), 80,000-91,000 events/s
in batches of 50 (p99 41 ms).

    .venv/bin/python benchmarks/intake.py [--duration 10] [--workers 2] [--connections 32]
        [--sink sqlite|postgresql|jetstream] [--lua PATH] [--peer URL] [--rounds 1]

With ``--sink postgresql`` (``SPLITLAB_DATABASE_URL``, default the local ``test`` database) the
events and the registry go to tables under a unique prefix, dropped afterwards; with
``--sink jetstream`` (``SPLITLAB_NATS_URL``) events go to the ``SPLITLAB_EVENTS`` stream. Only the
SQLite run counts the stored events afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

EVENT = {
    "$schema": "/analytics/product_metrics/web/base/2.1.0",
    "action": "experiment_exposure",
    "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
    "meta": {"stream": "product_metrics.web_base", "domain": "en.wikipedia.org"},
    "dt": "2026-11-22T00:00:00.000Z",
    "page": {"id": 30715282, "title": "Dark_Souls", "namespace_id": 0, "revision_id": 1084793259},
    "mediawiki": {"database": "enwiki", "skin": "vector"},
    "performer": {"is_logged_in": False, "session_id": "eeeeeeeeeeeeeeeeeeee"},
    "experiment": {"enrolled": "sticky-header-2026", "assigned": "treatment",
                   "subject_id": "a" * 64, "sampling_unit": "edge-unique",
                   "coordinator": "default", "phase_index": 0},
}
ROOT = Path(__file__).resolve().parent.parent
SHARED_LUA = [ROOT.parent / "shared/bench/intake-web-base.lua"]
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(data_dir: Path, port: int, workers: int, env: dict[str, str]
                 ) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from splitlab.cli import main; main()", "serve",
               "--data-dir", str(data_dir), "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, start_new_session=True, stderr=subprocess.DEVNULL,
                               env={**os.environ, **env})
    for _ in range(300):
        try:
            with urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def milliseconds(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, script: Path | None, args: argparse.Namespace, extra: list[str] | None = None,
            duration: int | None = None) -> dict[str, float]:
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections),
               "-d", f"{duration or args.duration}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    if extra:
        command += ["--", *extra]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
              "requests": float(re.search(r"(\d+) requests in", output).group(1))}  # type: ignore[union-attr]
    for label in ("50", "99"):
        match = re.search(rf"\s{label}%\s+([\d.]+(?:us|ms|s))", output)
        result[f"p{label}"] = milliseconds(match.group(1)) if match else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non2xx"] = float(errors.group(1)) if errors else 0.0
    shared = re.search(r"RESULT .* ok=(\d+) non201=(\d+)", output)  # the shared script's own
    if shared:
        result["non2xx"] = float(shared.group(2))
    return result


def server_cpu(session: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of ``session``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6 of stat, counted after the name
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def sink_env(sink: str, prefix: str) -> dict[str, str]:
    env = {"SPLITLAB_EVENTS_SINK": sink}
    if sink == "postgresql":
        env["SPLITLAB_DATABASE_URL"] = os.environ.get(
            "SPLITLAB_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
        env["SPLITLAB_TABLE_PREFIX"] = prefix
    return env


def drop_tables(url: str, prefix: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        names = [r[0] for r in db.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (prefix + "%",))]
        for name in names:
            db.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')


async def _jetstream_stream(url: str, delete: bool) -> bool:
    import nats

    client = await nats.connect(url)
    try:
        js = client.jetstream()
        try:
            await js.stream_info("SPLITLAB_EVENTS")
        except Exception:
            return False
        if delete:
            await js.delete_stream("SPLITLAB_EVENTS")
        return True
    finally:
        await client.close()


def stored(data_dir: Path, sink: str = "sqlite", env: dict[str, str] | None = None,
           nats_url: str = "") -> int:
    """Events of the benchmark's stream stored by ``sink`` so far (its spool included)."""
    from splitlab.intake.shards import shard_paths

    paths = [data_dir / f"spool-{sink}.sqlite"]
    if sink == "sqlite":
        paths += shard_paths(data_dir / "events.sqlite").values()
    count = 0
    for path in paths:
        if path.exists():
            with sqlite3.connect(path) as db:
                count += int(db.execute("SELECT count(*) FROM events WHERE stream = "
                                        "'product_metrics.web_base'").fetchone()[0])
    if sink == "postgresql" and env is not None:
        import psycopg

        with psycopg.connect(env["SPLITLAB_DATABASE_URL"], autocommit=True) as db:
            table = env["SPLITLAB_TABLE_PREFIX"] + "events"
            row = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            count += int(row[0]) if row else 0
    if sink == "jetstream":
        count += asyncio.run(_jetstream_messages(nats_url))
    return count


async def _jetstream_messages(url: str) -> int:
    import nats

    client = await nats.connect(url)
    try:
        return int((await client.jetstream().stream_info("SPLITLAB_EVENTS")).state.messages)
    finally:
        await client.close()


def _append_for(path: str, seconds: float, sharded: bool, results: Any) -> None:
    from splitlab.intake.pipeline import TimeOrderedIds
    from splitlab.intake.sinks import StoredEvent
    from splitlab.intake.sqlite_log import SQLiteEventLog, claim_shard

    shard, _owner = claim_shard(Path(path)) if sharded else (Path(path), None)
    log = SQLiteEventLog(shard)
    body = json.dumps(EVENT).encode()
    new_id = TimeOrderedIds()
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        log.append([StoredEvent(new_id(), "product_metrics.web_base",
                                "2026-11-22T00:00:00.000Z", body) for _ in range(500)])
        count += 500
    results.put(count)


def storage_ceiling(data_dir: Path, processes: int, seconds: float, sharded: bool) -> float:
    """Events/s that ``processes`` processes appending batches of 500 reach, without HTTP."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    path = str(data_dir / f"ceiling-{sharded}" / "events.sqlite")
    workers = [context.Process(target=_append_for, args=(path, seconds, sharded, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    total = sum(int(results.get()) for _ in workers)
    for worker in workers:
        worker.join()
    return total / seconds


def measure_splitlab(url: str, script: Path | None, args: argparse.Namespace, extra: list[str],
                     size: int, data_dir: Path, env: dict[str, str], nats_url: str,
                     server: subprocess.Popen[bytes]) -> dict[str, float]:
    """One wrk run against splitlab, printed with its server CPU and the stored-events check."""
    before, cpu = stored(data_dir, args.sink, env, nats_url), server_cpu(server.pid)
    r = run_wrk(url, script, args, extra)
    cpu = server_cpu(server.pid) - cpu
    ok = (r["requests"] - r["non2xx"]) * size
    after = stored(data_dir, args.sink, env, nats_url)
    check = f"  stored {after - before:,} / acknowledged >= {ok:,.0f}"
    print(f"POST batch={size:>3}: {r['rps']:,.0f} req/s = {r['rps'] * size:,.0f} "
          f"events/s ({r['rps'] * size / args.healthz_rps:.2f} x healthz req/s)  p50 "
          f"{r['p50']:.1f} ms  p99 {r['p99']:.1f} ms  non-2xx {r['non2xx']:.0f}  "
          f"server CPU {cpu * 1000 / max(r['requests'], 1):.2f} ms/request{check}", flush=True)
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", default="1,50")
    parser.add_argument("--sink", default="sqlite", choices=["sqlite", "postgresql", "jetstream"])
    parser.add_argument("--lua", type=Path, default=None,
                        help="wrk script taking the batch size as its argument")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peer", default=None,
                        help="URL of another intake (e.g. EventGate's /v1/events) to compare with")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternating splitlab/peer runs per batch size")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="splitlab-bench-") as tmp:
        data_dir, port = Path(tmp), free_port()
        prefix = f"bench_{os.getpid()}_"
        env = sink_env(args.sink, prefix)
        nats_url = os.environ.get("SPLITLAB_NATS_URL", "nats://127.0.0.1:4222")
        existed = args.sink == "jetstream" and asyncio.run(_jetstream_stream(nats_url, False))
        server = start_server(data_dir, port, args.workers, env)
        try:
            print(f"splitlab serve --workers {args.workers} (sink {args.sink}); wrk "
                  f"-t{args.threads} -c{args.connections} -d{args.duration}s; "
                  f"cpus={os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
            run_wrk(f"http://127.0.0.1:{port}/healthz", None, args, duration=args.warmup)
            base = run_wrk(f"http://127.0.0.1:{port}/healthz", None, args)
            args.healthz_rps = base["rps"]
            print(f"baseline GET /healthz: {base['rps']:,.0f} req/s  p50 {base['p50']:.1f} ms"
                  f"  p99 {base['p99']:.1f} ms")
            for sharded in (False, True) if args.sink == "sqlite" else ():
                ceiling = storage_ceiling(data_dir, args.workers, args.duration, sharded)
                print(f"baseline SQLite log alone, {args.workers} processes x 500 events per "
                      f"commit, {'a shard each' if sharded else 'one shared file'}, no HTTP: "
                      f"{ceiling:,.0f} events/s")
            lua = args.lua or next((p for p in SHARED_LUA if p.is_file()), None)
            print(f"workload: {lua or 'built-in body (the shared Lua script is absent)'}")
            for size in (int(b) for b in args.batches.split(",")):
                script, extra = lua, [str(size)]
                if lua is None:
                    script, extra = data_dir / f"post{size}.lua", []
                    script.write_text(LUA.format(body=json.dumps(json.dumps([EVENT] * size))))
                url = f"http://127.0.0.1:{port}/v1/events"
                run_wrk(url, script, args, extra, duration=args.warmup)
                if args.peer:
                    run_wrk(args.peer, script, args, extra, duration=args.warmup)
                ratios = []
                for round_ in range(args.rounds):
                    # ABBA: every other round the peer goes first, so that a drift of the
                    # machine's speed within a pair does not always favour the same side
                    order = ("peer", "splitlab") if args.peer and round_ % 2 else ("splitlab",
                                                                                   "peer")
                    results: dict[str, dict[str, float]] = {}
                    for side in order:
                        if side == "splitlab":
                            results[side] = measure_splitlab(url, script, args, extra, size,
                                                             data_dir, env, nats_url, server)
                        elif args.peer:
                            results[side] = run_wrk(args.peer, script, args, extra)
                    if args.peer:
                        r, peer = results["splitlab"], results["peer"]
                        ratios.append(r["rps"] / peer["rps"])
                        print(f"  peer batch={size:>3}: {peer['rps']:,.0f} req/s = "
                              f"{peer['rps'] * size:,.0f} events/s  p50 {peer['p50']:.1f} ms  "
                              f"p99 {peer['p99']:.1f} ms  non-2xx {peer['non2xx']:.0f}  "
                              f"splitlab/peer {ratios[-1]:.2f}"
                              f"{'  (peer ran first)' if order[0] == 'peer' else ''}",
                              flush=True)
                if ratios:
                    print(f"  batch={size}: median splitlab/peer over {len(ratios)} rounds "
                          f"{statistics.median(ratios):.2f}", flush=True)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
            if args.sink == "postgresql":
                drop_tables(env["SPLITLAB_DATABASE_URL"], prefix)
            if args.sink == "jetstream" and not existed:  # only what this run created
                asyncio.run(_jetstream_stream(nats_url, True))


if __name__ == "__main__":
    main()
