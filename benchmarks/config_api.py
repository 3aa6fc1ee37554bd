"""Requests/s and p99 of ``GET /api/v1/experiments`` with 200 experiments, on loopback.

Starts a real ``splitlab serve`` (SQLite, ``--workers`` processes), seeds 200 running experiments
and drives it with ``wrk`` (Debian package) for: full gzip responses, 304 responses to
``If-None-Match``, and ``/healthz`` as the framework's floor in the same run.

    .venv/bin/python benchmarks/config_api.py [--seconds 10] [--connections 32] [--workers 2]

It then measures, in process and without a network, the CPU time one request costs through the
whole ASGI application (middleware, routing, handler) for the same three cases: a figure the
load of a shared machine hardly disturbs.

Targets on a 2-core machine: >= 8,000 req/s for 304s, >= 3,000 req/s for full gzip responses,
p99 < 20 ms. wrk shares the cores with the server, so figures are a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from splitlab.registry.store import Registry
from splitlab.service.app import create_app
from splitlab.service.settings import Settings

TOKEN = "benchmark-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(data_dir: Path, count: int) -> None:
    """``count`` running experiments with realistic rows, written straight into the store."""
    registry = Registry.open(None, data_dir)
    now = datetime.now(UTC)
    for i in range(count):
        registry.create("experiment", {
            "name": f"benchmark-experiment-{i:04d}",
            "groups": ["control", "treatment", f"variant-{i % 7}"][: 2 + i % 2],
            "sample_rate": {"default": 0.1, "0.5": ["enwiki", "dewiki"], "1": [f"site{i}wiki"]},
            "user_identifier_type": ("mw-user", "edge-unique", "session")[i % 3],
            "start": (now - timedelta(days=1)).isoformat(),
            "end": (now + timedelta(days=30)).isoformat(),
            "stream_name": "product_metrics.web_base",
            "schema_id": "/analytics/product_metrics/web/base/2.1.0",
            "contextual_attributes": ["page_namespace", "performer_is_logged_in"],
        }, actor="benchmark")
    registry.close()


def wrk(url: str, seconds: int, connections: int, headers: list[str]) -> tuple[float, str]:
    """(requests/s, p99 text) from one wrk run."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for header in headers:
        command[1:1] = ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if rate is None or p99 is None:
        raise RuntimeError(f"cannot read wrk output:\n{output}")
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} error responses:\n{output}")
    return float(rate.group(1)), p99.group(1)


async def asgi_cost(data: Path, etag: str, count: int) -> list[tuple[str, float]]:
    """CPU microseconds per request through the in-process ASGI app, per case."""
    app = create_app(Settings(data_dir=data, admin_token=TOKEN))
    cases = [("baseline GET /healthz", "/healthz", []),
             ("full 200 (gzip)", "/api/v1/experiments", [(b"accept-encoding", b"gzip")]),
             ("304 If-None-Match", "/api/v1/experiments",
              [(b"accept-encoding", b"gzip"), (b"if-none-match", etag.encode())])]
    results = []
    async with app.router.lifespan_context(app):
        for label, path, headers in cases:
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                     "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                     "root_path": "", "query_string": b"", "headers": headers,
                     "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}

            async def receive() -> dict[str, object]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, object]) -> None:
                return None

            for _ in range(200):  # warm the caches
                await app(dict(scope), receive, send)
            started = time.process_time()
            for _ in range(count):
                await app(dict(scope), receive, send)
            results.append((label, (time.process_time() - started) / count * 1e6))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk; scripts/test installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        seed(data, args.experiments)
        port = free_port()
        env = {**os.environ, "SPLITLAB_ADMIN_TOKEN": TOKEN}
        env.pop("SPLITLAB_DATABASE_URL", None)
        splitlab = Path(sys.executable).with_name("splitlab")
        server = subprocess.Popen(
            [str(splitlab), "serve", "--port", str(port), "--data-dir", str(data),
             "--workers", str(args.workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(150):
                try:
                    httpx.get(base + "/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            url = base + "/api/v1/experiments"
            full = httpx.get(url, headers={"Accept-Encoding": "gzip"})
            rows = len(full.json())
            size = int(full.headers["content-length"])
            etag = full.headers["etag"]
            print(f"{rows} experiments; gzip body {size:,} bytes; {args.workers} workers; "
                  f"wrk -t2 -c{args.connections} -d{args.seconds}s; cores {os.cpu_count()}")
            cases = [
                ("baseline GET /healthz", base + "/healthz", []),
                ("full 200 (gzip)", url, ["Accept-Encoding: gzip"]),
                ("304 If-None-Match", url, ["Accept-Encoding: gzip", f"If-None-Match: {etag}"]),
            ]
            print(f"{'case':<24}{'req/s':>10}{'p99':>10}")
            for label, target, headers in cases:
                rate, p99 = wrk(target, args.seconds, args.connections, headers)
                print(f"{label:<24}{rate:>10,.0f}{p99:>10}")
        finally:
            server.terminate()
            server.wait(timeout=20)
        print(f"\nin-process ASGI, CPU time per request ({args.requests:,} requests per case)")
        for label, micros in asyncio.run(asgi_cost(data, etag, args.requests)):
            print(f"{label:<24}{micros:>10.1f} µs")


if __name__ == "__main__":
    main()
