"""The client payload: only client experiments, right groups (checked against the tk-v1 vectors
an independent JS generator produced), signed so that any change is detected."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conftest import VECTORS
from splitlab.core.model import Experiment
from splitlab.errors import SignatureError
from splitlab.sdk.bootstrap import payload_body_classes, render_bootstrap
from splitlab.sdk.client_payload import PayloadOptions, build_payload, name_key
from splitlab.sdk.signing import b64url_decode, load_or_create_signer, verify_envelope

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def row(name: str, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {"name": name, "groups": ["control", "treatment"],
                               "sample_rate": {"default": 1}, "user_identifier_type": "edge-unique"}
    return {**base, **extra}


def test_every_vector_case_gives_the_expected_group_and_subject_id() -> None:
    cases = json.loads((VECTORS / "tk-v1.json").read_text())["cases"]
    assert len(cases) > 100
    for case in cases:
        given, expected = case["input"], case["expected"]
        experiment = Experiment.from_config(row(given["experiment"], groups=given["groups"],
                                                sample_rate=given["sample_rate"]))
        payload = build_payload([experiment], {"edge-unique": given["identifier"]}, NOW,
                                PayloadOptions(site=given["site"]))
        entry = payload["experiments"].get(given["experiment"])
        if expected["in_sample"]:
            assert entry is not None, case["id"]
            assert (entry["group"], entry["subject_id"]) == (expected["group"],
                                                             expected["subject_id"]), case["id"]
        else:
            assert entry is None, case["id"]


def test_only_active_client_experiments_of_a_known_unit_are_listed() -> None:
    experiments = [
        Experiment.from_config(row("client-one-exp")),
        Experiment.from_config(row("server-only-exp")),
        Experiment.from_config(row("client-ended-exp", end="2026-01-01T00:00:00Z")),
        Experiment.from_config(row("client-user-exp", user_identifier_type="mw-user")),
    ]
    options = PayloadOptions(client_experiments={"client-one-exp", "client-ended-exp",
                                                 "client-user-exp"})
    payload = build_payload(experiments, {"edge-unique": "abc"}, NOW, options)
    assert list(payload["experiments"]) == ["client-one-exp"]
    entry = payload["experiments"]["client-one-exp"]
    assert entry["exposure_version"] == experiments[0].exposure_version
    assert entry["sampling_unit"] == "edge-unique"
    assert entry["schema_id"] == "/analytics/product_metrics/web/base/2.1.0"
    assert payload["exp"] - payload["iat"] == 86_400
    with_user = build_payload(experiments, {"edge-unique": "abc", "mw-user": 7}, NOW, options)
    assert sorted(with_user["experiments"]) == ["client-one-exp", "client-user-exp"]


def test_hashed_names_hide_the_name_and_carry_the_salt() -> None:
    import hashlib

    payload = build_payload([Experiment.from_config(row("secret-name-exp"))],
                            {"edge-unique": "abc"}, NOW, PayloadOptions(salt="s1"))
    key = hashlib.sha256(b"s1secret-name-exp").hexdigest()[:16]
    assert name_key("secret-name-exp", "s1") == key
    assert list(payload["experiments"]) == [key] and payload["salt"] == "s1"
    assert "secret-name-exp" not in json.dumps(payload)


def test_the_key_is_created_once_with_mode_0600_and_signatures_verify(tmp_path: Path) -> None:
    signer = load_or_create_signer(tmp_path)
    key_file = tmp_path / "client-signing-key.pem"
    assert load_or_create_signer(tmp_path).jwk == signer.jwk
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "client-signing-key.next.pem", key_file.name]
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    payload = build_payload([Experiment.from_config(row("client-one-exp"))],
                            {"edge-unique": "abc"}, NOW)
    envelope = signer.sign(payload)
    # an independent check with the raw key, not through verify_envelope
    Ed25519PublicKey.from_public_bytes(b64url_decode(signer.jwk["x"])).verify(
        b64url_decode(envelope["sig"]), envelope["payload"].encode())
    assert verify_envelope(envelope, signer.jwks(), now=NOW.timestamp()) == payload


def test_a_changed_byte_or_an_expired_payload_is_rejected(tmp_path: Path) -> None:
    signer = load_or_create_signer(tmp_path)
    payload = build_payload([Experiment.from_config(row("client-one-exp"))],
                            {"edge-unique": "abc"}, NOW)
    envelope = signer.sign(payload)
    text = envelope["payload"]
    group_at = text.index('"treatment"') if "treatment" in text else text.index('"control"')
    tampered = {**envelope, "payload": text[:group_at + 1] + "X" + text[group_at + 2:]}
    with pytest.raises(SignatureError, match="does not match"):
        verify_envelope(tampered, signer.jwks())
    with pytest.raises(SignatureError, match="expired"):
        verify_envelope(envelope, signer.jwks(), now=payload["exp"])
    with pytest.raises(SignatureError, match="no Ed25519 key"):
        verify_envelope({**envelope, "kid": "other"}, signer.jwks())


def test_bootstrap_is_an_inert_json_block_that_cannot_end_early() -> None:
    envelope = {"alg": "EdDSA", "kid": "k", "payload": '{"x":"</script><script>alert(1)"}',
                "sig": "s"}
    html = render_bootstrap(envelope, nonce="abc123==")
    assert html.startswith('<script type="application/json" id="splitlab-config" nonce="abc123==">')
    assert html.count("</script>") == 1 and html.endswith("</script>")
    inner = html[html.index(">") + 1 : -len("</script>")]
    assert json.loads(inner) == envelope
    with pytest.raises(ValueError, match="nonce"):
        render_bootstrap(envelope, nonce='x" onload="y')


def test_body_classes_come_from_plain_payloads_only() -> None:
    experiments = [Experiment.from_config(row("Sticky Header exp", groups=["only"]))]
    payload = build_payload(experiments, {"edge-unique": "abc"}, NOW)
    assert payload_body_classes(payload) == ["xlab-experiment-sticky-header-exp",
                                             "xlab-experiment-sticky-header-exp-only"]
    hashed = build_payload(experiments, {"edge-unique": "abc"}, NOW, PayloadOptions(salt="s"))
    assert payload_body_classes(hashed) == []


def test_key_id_is_the_rfc_7638_thumbprint_of_rfc_8037s_example_key() -> None:
    from splitlab.sdk.signing import public_jwk

    jwk = public_jwk(b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"))
    assert jwk["kid"] == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"  # RFC 8037, A.3
    assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")


def test_cli_client_keys_prints_the_public_set_only(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from splitlab.cli import app

    result = CliRunner().invoke(app, ["client-keys", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    keys = json.loads(result.stdout)
    assert keys == load_or_create_signer(tmp_path).jwks()
    assert "PRIVATE" not in result.output and '"d"' not in result.stdout


def test_rendering_needs_only_the_standard_library() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['cryptography'] = None\n"
            "from splitlab.sdk.bootstrap import render_bootstrap\n"
            "from splitlab.sdk.client_payload import build_payload\n"
            "import splitlab.sdk.signing\n"
            "print(render_bootstrap({'payload': '{}', 'sig': 'x'}))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith('<script type="application/json"')
