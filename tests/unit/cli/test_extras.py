"""Each extra works on its own: the ``splitlab`` command with only the base dependencies and one
extra installed starts, runs that extra's commands, and names the extra a command needs.

An installation without an extra is imitated in a subprocess: every module of the other
extras' distributions fails to import and ``importlib.util.find_spec`` does not find it. Which
modules those are comes from ``pyproject.toml`` and the installed distributions' metadata, not
from splitlab's code.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

from conftest import ROOT

EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"][
    "optional-dependencies"]
BASE = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["dependencies"]
RUN = """
import importlib.abc, importlib.util, sys

BLOCKED = set(sys.argv[1].split(","))
def absent(name):
    return name.partition(".")[0] in BLOCKED

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if absent(name):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
found = importlib.util.find_spec
importlib.util.find_spec = lambda name, package=None: None if absent(name) else found(name, package)
sys.argv = ["splitlab", *sys.argv[2:]]
from splitlab.cli import main
main()
"""
CONFIG_ROW = {"name": "extras-experiment", "groups": ["control", "treatment"],
              "sample_rate": {"default": 1}, "user_identifier_type": "mw-user"}


def distribution(requirement: str) -> str:
    """The normalised distribution name of a requirement such as ``psycopg[binary]>=3.1``."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


@cache
def modules_of() -> dict[str, set[str]]:
    """Top-level import names per installed distribution (normalised name)."""
    found: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            found.setdefault(distribution(dist), set()).add(module)
    return found


def blocked_without(extra: str | None) -> list[str]:
    """The modules of every distribution an extra lists, except the base and ``extra``'s."""
    kept = {distribution(r) for r in BASE} | {distribution(r) for r in EXTRAS.get(extra, [])}
    others = {distribution(r) for name, reqs in EXTRAS.items() for r in reqs if name != extra}
    return sorted(m for dist in others - kept for m in modules_of().get(dist, ()))


def splitlab(extra: str | None, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``splitlab ARGS`` as if only the base dependencies and ``extra`` were installed."""
    return subprocess.run(
        [sys.executable, "-c", RUN, ",".join(blocked_without(extra)), *args],
        capture_output=True, text=True, timeout=300, cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(cwd)},
    )


def assert_names_extra(result: subprocess.CompletedProcess[str], extra: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"pip install 'splitlab[{extra}]'" in lines[0], result.stderr


def test_the_blocked_modules_are_the_other_extras() -> None:
    assert {"orjson", "starlette", "httpx"} <= set(blocked_without("analysis"))
    assert {"duckdb", "pyarrow"} <= set(blocked_without("server"))
    assert not {"yaml", "typer", "rich"} & set(blocked_without("analysis"))
    assert {"orjson", "pyarrow", "cryptography", "yaml"} <= set(blocked_without(None))


def test_the_base_install_runs_assign_and_names_the_extra_of_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps([CONFIG_ROW]))
    assert splitlab(None, "--help", cwd=tmp_path).returncode == 0
    assigned = splitlab(None, "assign", "--config", str(config), "--experiment",
                        "extras-experiment", "42", cwd=tmp_path)
    assert assigned.returncode == 0, assigned.stderr
    assert "control" in assigned.stdout or "treatment" in assigned.stdout
    for extra, args in [
        ("analysis", ["simulate", "--output", "e.parquet", "--units", "10"]),
        ("analysis", ["materialize", "--events", "e.jsonl", "--output", "d"]),
        ("analysis", ["analyze", "--experiment", "x", "--data-dir", "d"]),
        ("server", ["events", "tail"]),
        ("server", ["serve"]),
        ("server", ["experiments", "list"]),
        ("sign", ["client-keys"]),
    ]:
        assert_names_extra(splitlab(None, *args, cwd=tmp_path), extra)


def test_the_analysis_extra_alone_simulates_and_analyses(tmp_path: Path) -> None:
    assert splitlab("analysis", "--help", cwd=tmp_path).returncode == 0
    made = splitlab("analysis", "simulate", "--output", "e.jsonl", "--units", "300",
                    cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    report = splitlab("analysis", "analyze", "--experiment", "simulated-experiment",
                      "--events", "e.jsonl", "--format", "json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert set(json.loads(report.stdout)["groups"]) == {"control", "treatment"}
    assert_names_extra(splitlab("analysis", "events", "export", "--output", "x.jsonl",
                                cwd=tmp_path), "server")


def test_the_server_extra_alone_reads_events_and_names_analysis_for_parquet(
    tmp_path: Path
) -> None:
    from splitlab.intake.sinks import StoredEvent
    from splitlab.intake.sqlite_log import SQLiteEventLog

    log = SQLiteEventLog(tmp_path / ".splitlab" / "data" / "events.sqlite")
    log.append([StoredEvent("e1", "s", "2026-01-01T00:00:00.000Z", b'{"action":"x"}')])
    log.close()
    tail = splitlab("server", "events", "tail", cwd=tmp_path)
    assert tail.returncode == 0, tail.stderr
    assert tail.stdout == '{"action":"x"}\n'
    assert_names_extra(splitlab("server", "events", "export", "--output", "x.parquet",
                                cwd=tmp_path), "analysis")
    assert_names_extra(splitlab("server", "simulate", "--output", "x.parquet", cwd=tmp_path),
                       "analysis")
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("extra", ["sign", "server"])
def test_client_keys_with_an_extra_that_has_cryptography(extra: str, tmp_path: Path) -> None:
    keys = splitlab(extra, "client-keys", "--data-dir", "keys", cwd=tmp_path)
    assert keys.returncode == 0, keys.stderr
    assert json.loads(keys.stdout)["keys"][0]["crv"] == "Ed25519"


def test_starting_the_cli_imports_only_the_base_dependencies() -> None:
    """What ``import splitlab.cli`` loads beyond a bare interpreter: the standard library,
    splitlab, and the base dependencies with what they require (from their metadata)."""
    script = ("import sys; before = set(sys.modules); import splitlab.cli; "
              "print('\\n'.join(sorted(set(sys.modules) - before)))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True).stdout.split()
    allowed: set[str] = set()
    pending = [distribution(r) for r in BASE]
    while pending:
        dist = pending.pop()
        if dist in allowed:
            continue
        try:
            requirements = importlib.metadata.requires(dist) or []
        except importlib.metadata.PackageNotFoundError:  # for another platform (colorama)
            continue
        allowed.add(dist)
        for requirement in requirements:
            if "extra ==" not in requirement:
                pending.append(distribution(requirement))
    modules = {m for dist in allowed for m in modules_of().get(dist, ())}
    foreign = sorted({name.split(".")[0] for name in loaded} - modules - {"splitlab"}
                     - set(sys.stdlib_module_names))
    assert not [m for m in foreign if not m.startswith("_")], foreign
