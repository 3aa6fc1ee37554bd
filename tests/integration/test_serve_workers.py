"""``splitlab serve --workers N`` (splitlab.service.workers): a listening socket per worker, the
load spread over them, a killed worker replaced, a taken port refused, a clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.serve_helpers import free_port, server, server_environment

pytestmark = pytest.mark.integration

EVENT = {"$schema": "/analytics/product_metrics/web/base/2.1.0",
         "meta": {"stream": "product_metrics.web_base", "domain": "example.org"},
         "dt": "2026-11-22T00:00:00Z", "action": "click",
         "agent": {"client_platform": "mediawiki_js"}}


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def listening_inodes(port: int) -> set[int]:
    """Socket inodes listening on ``port`` (IPv4, from /proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    """The socket inodes process ``pid`` holds open."""
    inodes = set()
    for fd in (Path("/proc") / str(pid) / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def workers_of(pid: int, port: int, count: int, timeout: float = 30) -> dict[int, set[int]]:
    """Wait until ``count`` processes under ``pid`` listen on ``port``; their listening inodes."""
    deadline = time.monotonic() + timeout
    while True:
        listening = listening_inodes(port)
        held = {child: socket_inodes(child) & listening for child in children(pid)}
        held = {child: inodes for child, inodes in held.items() if inodes}
        if len(held) == count or time.monotonic() > deadline:
            return held
        time.sleep(0.2)


def test_each_worker_listens_on_a_socket_of_its_own_and_all_take_load(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    with server(data, port, workers=2) as process:
        held = workers_of(process.pid, port, 2)
        assert len(held) == 2, held
        first, second = held.values()
        assert first and second and not first & second  # two sockets, not one shared
        assert listening_inodes(port) == first | second  # the supervisor itself listens on none
        # Fresh connections are spread by the kernel: 64 of them all landing on one worker
        # has probability 2**-63. Each worker writes a shard of its own.
        for _ in range(64):
            with httpx.Client() as client:
                answer = client.post(f"http://127.0.0.1:{port}/v1/events", json=[EVENT])
                assert answer.status_code == 201, answer.text
    shards = sorted(p.name for p in data.glob("events*.sqlite"))
    assert shards == ["events-1.sqlite", "events.sqlite"]
    counts = [sqlite3.connect(data / name).execute("SELECT count(*) FROM events").fetchone()[0]
              for name in shards]
    assert sum(counts) == 64 and min(counts) > 0, counts


def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    with server(tmp_path / "data", port, workers=2) as process:
        held = workers_of(process.pid, port, 2)
        victim = min(held)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = workers_of(process.pid, port, 2, timeout=1)
            if len(now) == 2 and victim not in now:
                break
        else:
            pytest.fail(f"no worker replaced {victim}: {now}")
        for _ in range(10):
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_a_taken_port_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        finished = subprocess.run(
            [sys.executable, "-c", "from splitlab.cli import main; main()", "serve", "--port",
             str(port), "--workers", "2", "--data-dir", str(tmp_path / "data")],
            capture_output=True, text=True, timeout=60, env=server_environment(None))
    assert finished.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in finished.stderr
    assert "Address already in use" in finished.stderr


def test_sigterm_stops_every_worker_and_exits_0(tmp_path: Path) -> None:
    port = free_port()
    with server(tmp_path / "data", port, workers=2) as process:
        workers = set(workers_of(process.pid, port, 2))
        assert len(workers) == 2
        process.send_signal(signal.SIGTERM)  # the supervisor alone, not the group
        assert process.wait(30) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in (
            Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0])


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (absent, or a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_stop_when_the_supervisor_is_killed_outright(tmp_path: Path) -> None:
    """SIGKILL gives the supervisor no chance to stop its workers: they must notice themselves,
    free the port and let go of their shards."""
    port = free_port()
    with server(tmp_path / "data", port, workers=2) as process:
        workers = set(workers_of(process.pid, port, 2))
        assert len(workers) == 2
        process.kill()
        process.wait(10)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not all(gone(pid) for pid in workers):
                time.sleep(0.2)
            assert all(gone(pid) for pid in workers), workers
            assert not listening_inodes(port)
        finally:  # the group outlives its leader: leave no worker behind when this fails
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

