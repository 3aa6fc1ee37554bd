"""Benchmark of POST /v1/events: events/s and latency with durability on.

Starts ``splitlab serve`` (several uvicorn workers sharing the embedded SQLite log, WAL with
synchronous=FULL, answer after commit) on loopback and drives it with ``wrk`` (Debian's) and the
shared workload ``intake-web-base.lua`` (a byte-for-byte copy of ``../shared/bench/`` beside this
script: web base 1.3.0 events without ``meta.id``, 16 bodies in turn, batch size as its argument),
for batches of 1 and of 50 events. Baseline in the same run:
``GET /healthz`` of the same server (the HTTP stack's ceiling). After each run the log is counted
to check that every 201 is stored. Reference anchor (EventGate, Node.js, O_SYNC appends, on a
2-core machine): 42,700 events/s in batches of 50 (p99 54 ms), 3,850 single-event req/s (p99 19 ms).

    .venv/bin/python benchmarks/intake.py [--duration 10] [--workers 2] [--connections 32]
        [--sink sqlite|postgresql|jetstream]

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
import subprocess
import sys
import tempfile
import time
import uuid
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
WORKLOAD = Path(__file__).resolve().parent / "intake-web-base.lua"


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


def run_wrk(url: str, script: Path | None, args: argparse.Namespace, batch: int = 1
            ) -> dict[str, float]:
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections),
               "-d", f"{args.duration}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
        command += ["--", str(batch)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
              "requests": float(re.search(r"(\d+) requests in", output).group(1))}  # type: ignore[union-attr]
    for label in ("50", "99"):
        match = re.search(rf"\s{label}%\s+([\d.]+(?:us|ms|s))", output)
        result[f"p{label}"] = milliseconds(match.group(1)) if match else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non2xx"] = float(errors.group(1)) if errors else 0.0
    answers = re.search(r"RESULT .* ok=(\d+) non201=(\d+)", output)  # the workload's own count
    if answers:
        result["ok"], result["non201"] = float(answers.group(1)), float(answers.group(2))
    return result


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


def stored(data_dir: Path, sink: str, env: dict[str, str], nats_url: str) -> int:
    """Events of the benchmark's stream stored by ``sink`` so far (spool included)."""
    count = 0
    spool = data_dir / f"spool-{sink}.sqlite"
    for path in (data_dir / "events.sqlite", spool) if sink == "sqlite" else (spool,):
        if path.exists():
            with sqlite3.connect(path) as db:
                count += int(db.execute("SELECT count(*) FROM events WHERE stream = "
                                        "'product_metrics.web_base'").fetchone()[0])
    if sink == "postgresql":
        import psycopg

        with psycopg.connect(env["SPLITLAB_DATABASE_URL"], autocommit=True) as db:
            table = env["SPLITLAB_TABLE_PREFIX"] + "events"
            count += int(db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
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


def _append_for(path: str, seconds: float, ordered: bool, results: Any) -> None:
    from splitlab.intake.pipeline import TimeOrderedIds
    from splitlab.intake.sinks import StoredEvent
    from splitlab.intake.sqlite_log import SQLiteEventLog

    log = SQLiteEventLog(Path(path))
    body = json.dumps(EVENT).encode()
    new_id = TimeOrderedIds() if ordered else (lambda: str(uuid.uuid4()))
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        log.append([StoredEvent(new_id(), "product_metrics.web_base",
                                "2026-11-22T00:00:00.000Z", body) for _ in range(500)])
        count += 500
    results.put(count)


def storage_ceiling(data_dir: Path, processes: int, seconds: float, ordered: bool) -> float:
    """Events/s that ``processes`` processes appending batches of 500 reach, without HTTP."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    path = str(data_dir / f"ceiling-{ordered}.sqlite")
    workers = [context.Process(target=_append_for, args=(path, seconds, ordered, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    total = sum(results.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", default="1,50")
    parser.add_argument("--sink", default="sqlite", choices=["sqlite", "postgresql", "jetstream"])
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
            base = run_wrk(f"http://127.0.0.1:{port}/healthz", None, args)
            print(f"baseline GET /healthz: {base['rps']:,.0f} req/s  p50 {base['p50']:.1f} ms"
                  f"  p99 {base['p99']:.1f} ms")
            for ordered in (True, False) if args.sink == "sqlite" else ():
                ceiling = storage_ceiling(data_dir, args.workers, args.duration, ordered)
                print(f"baseline SQLite log alone, {args.workers} processes x 500 events per "
                      f"commit, {'time-ordered' if ordered else 'random (v4)'} ids, no HTTP: "
                      f"{ceiling:,.0f} events/s")
            for size in (int(b) for b in args.batches.split(",")):
                before = stored(data_dir, args.sink, env, nats_url)
                r = run_wrk(f"http://127.0.0.1:{port}/v1/events", WORKLOAD, args, size)
                ok = r.get("ok", r["requests"] - r["non2xx"]) * size
                time.sleep(1)  # requests still in flight when wrk stopped
                after = stored(data_dir, args.sink, env, nats_url)
                print(f"POST batch={size:>3}: {r['rps']:,.0f} req/s = {r['rps'] * size:,.0f} "
                      f"events/s  p50 {r['p50']:.1f} ms  p99 {r['p99']:.1f} ms  non-201 "
                      f"{r.get('non201', r['non2xx']):.0f}  stored {after - before:,} / "
                      f"acknowledged >= {ok:,.0f}")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
            if args.sink == "postgresql":
                drop_tables(env["SPLITLAB_DATABASE_URL"], prefix)
            if args.sink == "jetstream" and not existed:  # only what this run created
                asyncio.run(_jetstream_stream(nats_url, True))


if __name__ == "__main__":
    main()
