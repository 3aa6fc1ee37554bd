"""OFREP against the official OpenFeature clients and a real ``splitlab serve`` subprocess.

Expected groups come from the shared tk-v1 vectors (an independent generator), not from the
server's code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ROOT, VECTORS, unavailable
from tests.integration.serve_helpers import create_experiment, free_port
from tests.integration.serve_helpers import server as serve

pytestmark = pytest.mark.integration

API_KEY = "interop-key"
ADMIN_TOKEN = "interop-admin-token"
EXPERIMENT = "vector-exp-2-groups"
CASES = [c for c in json.loads((VECTORS / "tk-v1.json").read_text())["cases"]
         if c["input"]["experiment"] == EXPERIMENT and c["input"]["sample_rate"] == {"default": 0.5}
         and c["input"]["site"] is None and isinstance(c["input"]["identifier"], str)
         and c["input"]["identifier"]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``splitlab serve`` with one experiment (the vectors', created through the admin API)
    and an API key."""
    data = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {"SPLITLAB_ADMIN_TOKEN": ADMIN_TOKEN, "SPLITLAB_CLIENT_API_KEY": API_KEY}
    url = f"http://127.0.0.1:{port}"
    with serve(data / "data", port, workers=1, env=env, log=data / "serve.log"):
        create_experiment(url, ADMIN_TOKEN, {
            "name": EXPERIMENT, "groups": CASES[0]["input"]["groups"],
            "sample_rate": {"default": 0.5}, "user_identifier_type": "edge-unique"})
        time.sleep(0.6)  # the OFREP source re-reads the registry at most every 0.5 s
        yield url


def test_python_openfeature_ofrep_provider(server: str) -> None:
    try:
        from openfeature.contrib.provider import ofrep
    except ImportError:
        unavailable("openfeature-provider-ofrep is not installed (the dev extra)")
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.exception import ErrorCode
    from openfeature.flag_evaluation import Reason

    api.set_provider(ofrep.OFREPProvider(
        server, headers_factory=lambda: {"Authorization": f"Bearer {API_KEY}"}))
    client = api.get_client()
    assert len(CASES) >= 5
    for case in CASES:
        expected = case["expected"]
        details = client.get_string_details(
            EXPERIMENT, "fallback", EvaluationContext(targeting_key=case["input"]["identifier"]))
        if expected["in_sample"]:
            assert (details.value, details.variant, details.reason) == (
                expected["group"], expected["group"], Reason.SPLIT), case["id"]
            assert details.flag_metadata["subject_id"] == expected["subject_id"]
        else:
            assert details.reason == Reason.DEFAULT, case["id"]
            assert details.flag_metadata["enrolled"] is False
    missing = client.get_string_details("no-such-flag", "fallback",
                                        EvaluationContext(targeting_key="a"))
    assert (missing.value, missing.error_code) == ("fallback", ErrorCode.FLAG_NOT_FOUND)
    no_key = client.get_string_details(EXPERIMENT, "fallback", EvaluationContext())
    assert (no_key.value, no_key.error_code) == ("fallback", ErrorCode.TARGETING_KEY_MISSING)
    api.set_provider(ofrep.OFREPProvider(server, headers_factory=lambda: {"X-API-Key": "bad"}))
    refused = api.get_client().get_string_details(EXPERIMENT, "fallback",
                                                  EvaluationContext(targeting_key="a"))
    assert (refused.value, refused.error_code) == ("fallback", ErrorCode.GENERAL)
    assert "forbidden" in (refused.error_message or "")
    api.shutdown()


def test_web_openfeature_ofrep_provider_under_node(server: str) -> None:
    node = shutil.which("node")
    modules = ROOT / "clients" / "js" / "node_modules" / "@openfeature" / "ofrep-web-provider"
    if node is None or not modules.is_dir():
        unavailable("node or clients/js/node_modules (run npm ci in clients/js) is missing")
    keys = [c["input"]["identifier"] for c in CASES[:4]]
    spec = json.dumps({"targetingKeys": keys, "flags": [EXPERIMENT, "no-such-flag"]})
    run = subprocess.run([str(node), "interop/ofrep-web.mjs", server, API_KEY, spec],
                         cwd=ROOT / "clients" / "js", capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    output: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    for case in CASES[:4]:
        got = output["results"][case["input"]["identifier"]]
        expected = case["expected"]
        if expected["in_sample"]:
            assert got[EXPERIMENT] == {"value": expected["group"], "variant": expected["group"],
                                       "reason": "SPLIT", "errorCode": None,
                                       "subject_id": expected["subject_id"]}, case["id"]
        else:
            assert got[EXPERIMENT]["reason"] == "DEFAULT", case["id"]
        assert got["no-such-flag"]["errorCode"] == "FLAG_NOT_FOUND"
        assert got["no-such-flag"]["value"] == "fallback"
    assert all(r["url"].endswith("/ofrep/v1/evaluate/flags") for r in output["requests"])
    assert {r["status"] for r in output["requests"]} == {200}
