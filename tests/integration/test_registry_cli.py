"""`splitlab experiments ...` against a real `splitlab serve` subprocess."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from splitlab.cli import app

from .registry_scenario import running_row, scheduled_row
from .serve_helpers import free_port
from .serve_helpers import server as serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "cli-test-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("cli-server")
    port = free_port()
    with serve(data, port, workers=1, env={"SPLITLAB_ADMIN_TOKEN": TOKEN},
               graceful=True) as process:
        yield f"http://127.0.0.1:{port}"
    assert process.returncode == 0  # SIGTERM: a graceful stop exits 0


def run(server: str, *args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    env = {"SPLITLAB_URL": server, "COLUMNS": "200"}
    if token:
        env["SPLITLAB_ADMIN_TOKEN"] = token
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_import_is_idempotent_and_export_round_trips(server: str, tmp_path: Path) -> None:
    source = tmp_path / "experiments.yaml"
    original = running_row("cli-running-exp")
    source.write_text(yaml.safe_dump({"experiments": [original, scheduled_row()]}))
    code, out, _ = run(server, "experiments", "import", str(source))
    assert code == 0 and out.count("created") == 2, out
    code, out, _ = run(server, "experiments", "import", str(source), "--json")
    assert code == 0
    assert {r["action"] for r in json.loads(out)} == {"unchanged"}

    changed = {**original, "sample_rate": {"default": 0.5}}  # same dates: only the rate moves
    source.write_text(json.dumps([changed]))
    source = source.rename(tmp_path / "changed.json")
    code, out, _ = run(server, "experiments", "import", str(source))
    assert code == 0 and out.startswith("updated"), out

    exported = tmp_path / "export.yaml"
    assert run(server, "experiments", "export", "--yaml", "--output", str(exported))[0] == 0
    code, out, _ = run(server, "experiments", "import", str(exported), "--json")
    assert code == 0 and {r["action"] for r in json.loads(out)} == {"unchanged"}

    code, out, _ = run(server, "experiments", "history", "cli-running-exp", "--json")
    history = json.loads(out)
    assert [h["action"] for h in history] == ["create", "update"]
    assert history[1]["changes"]["sample_rate"][1] == {"default": 0.5}


def test_list_show_update_end_and_refusals(server: str, tmp_path: Path) -> None:
    row_file = tmp_path / "row.json"
    row_file.write_text(json.dumps(running_row("cli-edit-exp")))
    assert run(server, "experiments", "create", str(row_file))[0] == 0
    code, out, _ = run(server, "experiments", "list", "--json")
    assert "cli-edit-exp" in {r["name"] for r in json.loads(out)}
    code, out, _ = run(server, "experiments", "list")
    assert code == 0 and "cli-edit-exp" in out and "running" in out

    code, _, err = run(server, "experiments", "update", "cli-edit-exp", "--set",
                       'groups=["x","y"]')
    assert code == 1 and "phase_index 1" in err and "409" in err
    code, _, err = run(server, "experiments", "update", "cli-edit-exp", "--set",
                       "stream_name=other.stream", token="wrong")
    assert code == 1 and "401" in err
    code, _, _ = run(server, "experiments", "update", "cli-edit-exp", "--set",
                     "stream_name=other.stream")
    assert code == 0
    code, out, _ = run(server, "experiments", "show", "cli-edit-exp", "--json")
    shown = json.loads(out)
    assert shown["row"]["stream_name"] == "other.stream" and shown["revision"] == 2
    code, out, _ = run(server, "experiments", "end", "cli-edit-exp", "--json")
    assert code == 0 and json.loads(out)["revision"] == 3
    code, out, _ = run(server, "experiments", "show", "cli-edit-exp", "--json")
    assert json.loads(out)["status"] == "ended"
    code, _, err = run(server, "experiments", "show", "no-such-experiment")
    assert code == 1 and "404" in err


def test_layers_and_holdouts(server: str, tmp_path: Path) -> None:
    code, _, err = run(server, "layers", "create", "cli-layer", "--description", "CLI test")
    assert code == 0 and "created layer cli-layer" in err
    code, _, err = run(server, "holdouts", "create", "cli-holdout", "--percent", "2.5")
    assert code == 0, err
    code, _, err = run(server, "holdouts", "create", "cli-bad-holdout", "--percent", "0")
    assert code == 1 and "422" in err and "percent" in err
    code, _, err = run(server, "layers", "create", "cli-token-layer", token="wrong")
    assert code == 1 and "401" in err

    row = {**running_row("cli-layered-exp"), "algorithm": "sl-v2",
           "traffic_split": {"default": {"control": 5, "treatment": 5}},
           "layer": {"name": "cli-layer", "bins": 40000}, "holdouts": [{"name": "cli-holdout"}]}
    row_file = tmp_path / "layered.json"
    row_file.write_text(json.dumps(row))
    assert run(server, "experiments", "create", str(row_file))[0] == 0
    code, out, _ = run(server, "layers", "show", "cli-layer")
    assert code == 0
    assert "cli-layered-exp" in out and "[0, 40000)" in out
    assert "free: [40000, 100000) (60000 bins)" in out
    code, out, _ = run(server, "layers", "show", "cli-layer", "--json")
    assert json.loads(out)["occupancy"]["free"] == [[40000, 100000]]

    code, out, _ = run(server, "holdouts", "list")
    assert code == 0 and "cli-holdout" in out and "2.5" in out
    code, _, err = run(server, "holdouts", "update", "cli-holdout", "--set", "percent=3")
    assert code == 1 and "409" in err and "cli-layered-exp" in err
    code, _, err = run(server, "layers", "end", "cli-layer")
    assert code == 1 and "409" in err
    assert run(server, "experiments", "end", "cli-layered-exp")[0] == 0
    code, _, err = run(server, "layers", "end", "cli-layer")
    assert code == 0 and "ended layer cli-layer" in err
    code, out, _ = run(server, "layers", "list", "--json")
    assert {r["name"]: r["status"] for r in json.loads(out)}["cli-layer"] == "ended"
    code, out, _ = run(server, "layers", "history", "cli-layer", "--json")
    assert [e["action"] for e in json.loads(out)] == ["create", "end"]
    code, out, _ = run(server, "holdouts", "history", "cli-holdout")
    assert code == 0 and "create" in out
