"""The SDK across process boundaries: a forked worker and a script that exits right away."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from splitlab.sdk import Client, FileConfigSource, HttpEventSender, SenderOptions

from .sdk_helpers import IntakeStub, row

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_worker_keeps_config_updates_and_its_own_sender(
    intake: IntakeStub, tmp_path: Path
) -> None:
    config = tmp_path / "experiments.json"
    config.write_text(json.dumps([row("before-fork-test")]))
    sender = HttpEventSender(intake.url, SenderOptions(backoff=0.01))
    client = Client(FileConfigSource(config), sender)
    client.manager(user_id=1).get_experiment("before-fork-test").send("parent_event")
    assert client.flush(5.0)  # the parent's sender thread is running when we fork
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        code = 1
        try:
            os.read(ready_read, 1)
            handle = client.manager(user_id=1).get_experiment("added-after-fork")
            handle.send("child_event")
            code = 0 if handle.is_enrolled and client.flush(5.0) else 2
        finally:
            os._exit(code)
    config.write_text(json.dumps([row("before-fork-test"), row("added-after-fork")]))
    os.write(ready_write, b"x")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    actions = [(e["action"], e["experiment"]["enrolled"]) for e in intake.events]
    assert actions == [("parent_event", "before-fork-test"), ("child_event", "added-after-fork")]
    client.close()


def test_a_script_exiting_right_after_send_delivers(intake: IntakeStub) -> None:
    script = textwrap.dedent(f"""
        from splitlab.sdk import Client, HttpEventSender, MemoryConfigSource
        rows = [{json.dumps(row("maintenance-script-test"))!r}]
        import json
        client = Client(MemoryConfigSource([json.loads(r) for r in rows]),
                        HttpEventSender({intake.url!r}))
        for uid in range(3):
            client.manager(user_id=uid).get_experiment("maintenance-script-test").send(
                "script_ran", {{"action_source": "maintenance"}})
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    events = intake.events
    assert [e["action"] for e in events] == ["script_ran"] * 3
    assert [e["performer"]["id"] for e in events] == [0, 1, 2]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forks_while_other_threads_use_the_client_do_not_deadlock() -> None:
    import signal
    import threading
    import time

    from .sdk_helpers import make

    client, _, sender = make([row("fork-lock-test")])
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            client.manager(user_id=1).get_experiment("fork-lock-test").send("tick")
            client.metrics.send_retry()

    threads = [threading.Thread(target=busy) for _ in range(2)]
    for thread in threads:
        thread.start()
    stuck = 0
    try:
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                try:
                    client.manager(user_id=2).get_experiment("fork-lock-test").send("child")
                    client.metrics.send_retry()
                    client.snapshot()
                finally:
                    os._exit(0)
            deadline = time.monotonic() + 10
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    stuck += 1
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.005)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert stuck == 0
    assert len(sender.events) > 0
