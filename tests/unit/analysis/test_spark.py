"""DuckDB and Spark give the same numbers on the same files (one Spark session per module)."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import unavailable
from splitlab.analysis.analyze import Options, analyze
from splitlab.analysis.engines import DuckDBEngine, SparkEngine
from splitlab.analysis.materialize import materialize
from splitlab.analysis.metrics import load_catalog
from splitlab.analysis.report import to_dict
from splitlab.core.model import Experiment
from splitlab.simulate import Fault, Simulation, simulate, write_events

pytestmark = pytest.mark.slow
CATALOG = Path(__file__).parents[3] / "examples" / "metrics.yaml"
EXPERIMENT = Experiment.from_config({
    "name": "engines-agree", "groups": ["control", "b", "c"], "sample_rate": {"default": 1},
    "user_identifier_type": "edge-unique",
})


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkEngine]:
    if shutil.which("java") is None:
        unavailable("Spark needs Java (apt-get install default-jre-headless)")
    engine = SparkEngine("local[2]")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("engines")
    spec = Simulation(EXPERIMENT, 4000, seed=8, lifts={"b": 1.1, "c": 0.95}, mixed_share=0.01,
                      fault=Fault("c", 0.05))
    write_events(simulate(spec), root / "events.parquet")
    materialize(root / "events.parquet", root / "data")
    return root / "data"


def differences(left: Any, right: Any, path: str = "") -> list[str]:
    """Where two JSON-like values differ (numbers beyond 1e-9 relative, 1e-12 absolute)."""
    if isinstance(left, dict) and isinstance(right, dict):
        if left.keys() != right.keys():
            return [f"{path}: keys {sorted(left)} != {sorted(right)}"]
        return [d for k in left for d in differences(left[k], right[k], f"{path}.{k}")]
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [d for i, (a, b) in enumerate(zip(left, right, strict=True))
                for d in differences(a, b, f"{path}[{i}]")]
    if isinstance(left, (int, float)) and isinstance(right, (int, float)) \
            and not isinstance(left, bool):
        same = math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)
        return [] if same else [f"{path}: {left!r} != {right!r}"]
    return [] if left == right else [f"{path}: {left!r} != {right!r}"]


@pytest.mark.parametrize("trigger", ["enrollment", "exposure"])
def test_duckdb_and_spark_agree_on_every_number(spark: SparkEngine, data: Path,
                                                trigger: str) -> None:
    options = Options(EXPERIMENT.name, EXPERIMENT.groups, trigger=trigger, correction="bh")
    catalog = load_catalog(CATALOG)
    duck = DuckDBEngine(threads=2)
    duck.load_events(data)
    expected = to_dict(analyze(duck, options, catalog))
    duck.close()
    spark.load_events(data)
    actual = to_dict(analyze(spark, options, catalog))
    assert expected.pop("engine") == "duckdb" and actual.pop("engine") == "spark"
    assert len(expected["metrics"]) == 5 and expected["units_in_multiple_groups"] > 0
    assert differences(expected, actual) == []
