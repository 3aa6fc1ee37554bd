"""A real ``splitlab serve`` subprocess for the integration tests, and what they do with it.

``server`` starts the service in its own process group on a free port and kills the whole group
at the end; ``create_experiment`` goes through the admin API (Bearer token), as an operator would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """This process's environment without its ``SPLITLAB_*`` settings (a developer's shell must
    not point the test server at another database or sink), plus ``env``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLAB_")}
    return {**inherited, **(env or {})}


@contextmanager
def server(
    data_dir: Path | None, port: int, workers: int = 2, env: Mapping[str, str] | None = None,
    log: Path | None = None, graceful: bool = False, cwd: Path | None = None,
    args: Sequence[str] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """``splitlab serve`` on ``port`` with the settings in ``env`` (see
    :func:`server_environment`) and its output in ``log`` (else discarded), in its own process
    group, run in ``cwd``; without ``data_dir`` no ``--data-dir`` is given (the default applies).
    ``args`` are more options of ``serve``. At the end the group is killed (SIGKILL), or with
    ``graceful`` sent SIGTERM and awaited (the caller can then check ``returncode``)."""
    command = [sys.executable, "-c", "from splitlab.cli import main; main()", "serve",
               "--port", str(port), "--workers", str(workers), *args]
    command += ["--data-dir", str(data_dir)] if data_dir is not None else []
    output = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(command, start_new_session=True, stdout=output, cwd=cwd,
                               stderr=subprocess.STDOUT, env=server_environment(env))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not start" + (f": {log.read_text()}" if log else ""))
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM if graceful else signal.SIGKILL)
            process.wait(20)
        if log is not None and not isinstance(output, int):
            output.close()


def create_experiment(url: str, token: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Create ``row`` through the admin API of the server at ``url``; returns the stored row."""
    created = httpx.post(f"{url}/api/v1/experiments", json=dict(row),
                         headers={"Authorization": f"Bearer {token}"})
    assert created.status_code == 201, created.text
    stored: dict[str, Any] = created.json()
    return stored
