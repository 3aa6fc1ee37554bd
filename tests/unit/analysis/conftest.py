"""Shared fixtures of the analysis tests: a one-thread DuckDB engine and event files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from splitlab.analysis.engines import DuckDBEngine


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    duck = DuckDBEngine(threads=1)
    yield duck
    duck.close()


def write(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` as a JSON lines file ``events.jsonl`` in ``tmp_path``."""
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in rows))
    return source
