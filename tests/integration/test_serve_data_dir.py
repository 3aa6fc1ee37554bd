"""A real ``splitlab serve`` started as ``./scripts/run`` does (no ``--data-dir``): its data lands
in ``.splitlab/data``, readable by the owner only, and ``splitlab events tail`` finds it with no
flag; a write without the token says how to pass it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from splitlab.cli import app

from .registry_scenario import running_row
from .serve_helpers import free_port
from .serve_helpers import server as serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVENT = {
    "$schema": "/analytics/product_metrics/web/base/2.1.0", "action": "click",
    "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
    "meta": {"stream": "product_metrics.web_base", "domain": "en.wikipedia.org",
             "id": "0d7e1c4e-0000-4000-8000-00000000da7a"},
    "dt": "2026-11-22T00:00:00.000Z",
}


def test_the_default_data_dir_is_shared_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / ".splitlab" / "data"
    with serve(None, port, workers=1, cwd=tmp_path, log=tmp_path / "serve.log"):
        assert httpx.post(f"{url}/v1/events", json=[EVENT]).status_code == 201
        token = (data / "admin-token").read_text().strip()
        created = httpx.post(f"{url}/api/v1/experiments", json=running_row("data-dir-exp"),
                             headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201, created.text
        assert httpx.get(f"{url}/.well-known/splitlab-keys.json").status_code == 200

        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("SPLITLAB_DATA_DIR", raising=False)
        monkeypatch.delenv("SPLITLAB_EVENTS_SINK", raising=False)
        monkeypatch.delenv("SPLITLAB_ADMIN_TOKEN", raising=False)
        tail = CliRunner().invoke(app, ["events", "tail"])
        assert tail.exit_code == 0, tail.output
        assert json.loads(tail.stdout)["meta"]["id"] == EVENT["meta"]["id"]

        row = tmp_path / "row.json"
        row.write_text(json.dumps(running_row("data-dir-exp-2")))
        refused = CliRunner().invoke(app, ["experiments", "create", str(row), "--url", url])
        assert refused.exit_code == 1
        message = " ".join(refused.stderr.split())
        assert "401" in message and "--token" in message and "SPLITLAB_ADMIN_TOKEN" in message
        assert f"$(cat {data / 'admin-token'})" in message
        accepted = CliRunner().invoke(app, ["experiments", "create", str(row), "--url", url,
                                            "--token", token])
        assert accepted.exit_code == 0, accepted.output

    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    private = ["admin-token", "client-signing-key.pem", "events.sqlite", "registry.sqlite"]
    private += [p.name for p in data.glob("*.sqlite-*")]
    modes = {name: oct(stat.S_IMODE((data / name).stat().st_mode)) for name in private}
    assert modes == {name: "0o600" for name in private}
