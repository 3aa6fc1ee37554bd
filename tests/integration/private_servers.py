"""Private sink servers a test may kill, stop and restart: never the machine's shared services.

:class:`PrivateNats` runs ``nats-server -js`` on its own free port with its own store folder;
:class:`PrivatePostgres` a cluster made by Debian's ``initdb`` in a temporary folder (run as the
``postgres`` user when the tests run as root, since PostgreSQL refuses root). Each server runs in
its own process group, so :meth:`send` reaches the PostgreSQL backends too. Absent binaries
skip the test (fail under ``SPLITLAB_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import unavailable
from tests.integration.serve_helpers import free_port

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {seconds} s")


class PrivateServer:
    """A server process in its own process group; subclasses say how to start it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> tuple[list[str], str | None]:
        """The command line and the user to run it as (None: this one)."""
        raise NotImplementedError

    def start(self) -> None:
        """Start (or restart after a kill) and wait until it accepts connections."""
        command, user = self.command()
        self.process = subprocess.Popen(command, start_new_session=True, user=user,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ready()

    def ready(self) -> None:
        wait_for_port(self.port)

    def send(self, number: int) -> None:
        """Send ``number`` to the whole server (its process group)."""
        assert self.process is not None
        os.killpg(self.process.pid, number)
        if number == signal.SIGKILL:
            self.process.wait(10)

    def stop(self, number: int = signal.SIGKILL) -> None:
        """Stop the server if it runs (``number``: SIGKILL, or the server's clean-stop signal)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)
            os.killpg(self.process.pid, number)
            self.process.wait(30)


class PrivateNats(PrivateServer):
    """``nats-server -js`` with file storage in its own folder."""

    def __init__(self, store: Path) -> None:
        if not os.access(NATS_SERVER, os.X_OK):
            unavailable(f"nats-server is not installed ({NATS_SERVER})")
        super().__init__()
        self.store = store

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> tuple[list[str], str | None]:
        return [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                "-sd", str(self.store)], None


class PrivatePostgres(PrivateServer):
    """A throw-away PostgreSQL cluster (trust authentication, user ``postgres``)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            unavailable("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are absent")
        super().__init__()
        self.bin = Path(found[-1]).parent
        self.user: str | None = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            try:
                self.user = pwd.getpwnam("postgres").pw_name
            except KeyError:
                unavailable("running as root and there is no postgres user to run a cluster")
        self.home = Path(tempfile.mkdtemp(prefix="splitlab-pg-"))
        if self.user is not None:
            shutil.chown(self.home, self.user)
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.home / "data"), "-A", "trust",
                        "-U", "postgres", "-E", "UTF8", "--no-sync"], check=True, user=self.user,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.database = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def fresh_database(self, name: str) -> None:
        """Create database ``name`` and use it from now on; the server is left stopped."""
        import psycopg

        if self.process is None or self.process.poll() is not None:
            self.start()
        self.database = "postgres"
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        self.database = name
        self.stop(signal.SIGINT)  # fast shutdown: no crash recovery at the next start

    def command(self) -> tuple[list[str], str | None]:
        return [str(self.bin / "postgres"), "-D", str(self.home / "data"), "-p", str(self.port),
                "-k", str(self.home), "-c", "listen_addresses=127.0.0.1"], self.user

    def ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # listening is not enough: recovery must be over
            done = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                                   str(self.port), "-t", "1"], capture_output=True)
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("the private PostgreSQL did not become ready")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
