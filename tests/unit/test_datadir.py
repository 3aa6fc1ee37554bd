"""The data directory: one default for every command, ``SPLITLAB_DATA_DIR`` honoured, and what
splitlab stores there readable by its owner only (0700 folder, 0600 files)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from splitlab.cli import app
from splitlab.datadir import data_dir, private_dir, private_file
from splitlab.intake.sinks import StoredEvent
from splitlab.intake.sqlite_log import SQLiteEventLog, SQLiteSink
from splitlab.registry.store import Registry
from splitlab.service.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def stored(number: int) -> StoredEvent:
    body = json.dumps({"action": "click", "n": number}).encode()
    return StoredEvent(f"id-{number}", "product_metrics.web_base", "2026-01-01T00:00:00.000Z",
                       body)


@pytest.fixture
def loose_umask() -> object:
    """The common default umask (files 0644, folders 0755), whatever the test runner's is."""
    previous = os.umask(0o022)
    yield None
    os.umask(previous)


def test_the_data_dir_is_the_flag_else_the_variable_else_dot_splitlab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert data_dir(env={}) == tmp_path / ".splitlab" / "data"
    assert data_dir(env={"SPLITLAB_DATA_DIR": "elsewhere"}) == tmp_path / "elsewhere"
    assert data_dir(Path("given"), env={"SPLITLAB_DATA_DIR": "elsewhere"}) == tmp_path / "given"
    assert Settings.from_env({}).data_dir == tmp_path / ".splitlab" / "data"
    assert Settings.from_env({"SPLITLAB_DATA_DIR": "/srv/x"}).data_dir == Path("/srv/x")


def test_events_tail_reads_the_default_and_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPLITLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("SPLITLAB_EVENTS_SINK", raising=False)
    for folder, number in ((tmp_path / ".splitlab" / "data", 1), (tmp_path / "other", 2)):
        log = SQLiteEventLog(folder / "events.sqlite")
        log.append([stored(number)])
        log.close()
    runner = CliRunner()
    default = runner.invoke(app, ["events", "tail"])
    assert default.exit_code == 0, default.output
    assert json.loads(default.stdout)["n"] == 1
    chosen = runner.invoke(app, ["events", "tail"], env={"SPLITLAB_DATA_DIR": "other"})
    assert chosen.exit_code == 0, chosen.output
    assert json.loads(chosen.stdout)["n"] == 2
    exported = runner.invoke(app, ["events", "export", "--output", "x.jsonl"],
                             env={"SPLITLAB_DATA_DIR": str(tmp_path / "other")})
    assert exported.exit_code == 0, exported.output
    assert json.loads((tmp_path / "x.jsonl").read_text())["n"] == 2
    missing = runner.invoke(app, ["events", "tail"], env={"SPLITLAB_DATA_DIR": "nowhere"})
    assert missing.exit_code == 2
    assert str(tmp_path / "nowhere" / "events.sqlite") in missing.output
    assert "--data-dir" in missing.output and "SPLITLAB_DATA_DIR" in missing.output


def test_the_event_log_is_private(tmp_path: Path, loose_umask: object) -> None:
    folder = tmp_path / "data"
    log = SQLiteEventLog(folder / "events.sqlite")
    log.append([stored(1), stored(2)])
    files = sorted(folder.iterdir())
    assert {f.name for f in files} >= {"events.sqlite", "events.sqlite-wal",
                                       "events.sqlite-shm", "events.sqlite.lock"}
    assert mode(folder) == 0o700
    assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    log.close()


def test_the_spool_is_private(tmp_path: Path, loose_umask: object) -> None:
    async def spool() -> None:
        sink = SQLiteSink(tmp_path / "data" / "spool-jetstream.sqlite")
        await sink.start()
        await sink.write([stored(1)])
        await sink.close()

    asyncio.run(spool())
    assert mode(tmp_path / "data") == 0o700
    for path in (tmp_path / "data").iterdir():
        assert mode(path) == 0o600, path


def test_the_registry_database_is_private(tmp_path: Path, loose_umask: object) -> None:
    registry = Registry.open(None, tmp_path / "data")
    registry.close()
    files = list((tmp_path / "data").glob("registry.sqlite*"))
    assert files and all(mode(f) == 0o600 for f in files), {f: oct(mode(f)) for f in files}
    assert mode(tmp_path / "data") == 0o700


def test_the_signing_key_is_private(tmp_path: Path, loose_umask: object) -> None:
    pytest.importorskip("cryptography")
    from splitlab.sdk.signing import KEY_FILE, load_or_create_signer

    load_or_create_signer(tmp_path / "keys")
    assert mode(tmp_path / "keys") == 0o700
    assert mode(tmp_path / "keys" / KEY_FILE) == 0o600


def test_a_data_dir_of_an_older_version_is_tightened(tmp_path: Path, loose_umask: object) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    (folder / "events.sqlite").write_bytes(b"")
    (folder / "events.sqlite").chmod(0o644)
    private_file(folder / "events.sqlite")
    assert mode(folder) == 0o700 and mode(folder / "events.sqlite") == 0o600
    assert private_dir(folder / "new") == folder / "new" and mode(folder / "new") == 0o700


def count_in_another_process(path: Path) -> int:
    """How many events a reader in a separate process finds in the log at ``path`` (it opens,
    reads and closes the log, as ``splitlab events export`` or a test's reader does)."""
    code = ("import sys; from pathlib import Path; from splitlab.intake.sqlite_log import "
            "SQLiteEventLog; log = SQLiteEventLog(Path(sys.argv[1])); print(log.count()); "
            "log.close()")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60, check=True)
    return int(done.stdout)


def test_opening_the_log_again_keeps_the_writers_locks(tmp_path: Path) -> None:
    """The service's results scheduler opens the event log its intake writes, in the same
    process. That second open must not cost the writer its SQLite locks: without them, a reader
    in another process deleted the write-ahead log on closing, and what the writer committed
    next was seen by no other process (and lost when the service was killed)."""
    path = tmp_path / "data" / "events.sqlite"
    writer = SQLiteEventLog(path)
    writer.append([stored(1)])
    SQLiteEventLog(path).close()
    private_file(path)
    assert count_in_another_process(path) == 1
    writer.append([stored(2)])
    assert count_in_another_process(path) == 2
    assert path.with_name("events.sqlite-wal").exists()
    writer.close()
