"""Signing keys across a rotation, and expiry checked by default when verifying an envelope."""

from __future__ import annotations

import json
import os
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from typer.testing import CliRunner

from splitlab.cli import app
from splitlab.core.model import Experiment
from splitlab.errors import SignatureError
from splitlab.sdk.client_payload import build_payload
from splitlab.sdk.signing import (
    PayloadSigner,
    b64url_decode,
    load_or_create_signer,
    rotate_signing_keys,
    verify_envelope,
)

EXPERIMENT = Experiment.from_config({
    "name": "client-one-exp", "groups": ["control", "treatment"],
    "sample_rate": {"default": 1}, "user_identifier_type": "edge-unique"})


def payload_at(when: datetime) -> dict[str, object]:
    return build_payload([EXPERIMENT], {"edge-unique": "abc"}, when)


def verifies_with_raw_key(envelope: dict[str, str], jwks: dict[str, list[dict[str, str]]]
                          ) -> bool:
    """An independent check: the published key with the envelope's kid, through cryptography."""
    [key] = [k for k in jwks["keys"] if k["kid"] == envelope["kid"]] or [None]
    if key is None:
        return False
    Ed25519PublicKey.from_public_bytes(b64url_decode(key["x"])).verify(
        b64url_decode(envelope["sig"]), envelope["payload"].encode())
    return True


def test_without_now_an_expired_payload_is_refused_and_a_fresh_one_verifies(
        tmp_path: Path) -> None:
    signer = load_or_create_signer(tmp_path)
    old = signer.sign(payload_at(datetime(2020, 1, 1, tzinfo=UTC)))
    with pytest.raises(SignatureError, match="expired"):
        verify_envelope(old, signer.jwks())
    fresh = payload_at(datetime.now(UTC))
    assert verify_envelope(signer.sign(fresh), signer.jwks()) == fresh
    assert json.loads(old["payload"])["exp"] < time.time()


def test_a_payload_without_a_numeric_exp_never_verifies(tmp_path: Path) -> None:
    signer = load_or_create_signer(tmp_path)
    for bad in ({"v": 1}, {"v": 1, "exp": "9999999999"}, {"v": 1, "exp": True}):
        with pytest.raises(SignatureError, match="exp"):
            verify_envelope(signer.sign(bad), signer.jwks(), now=0)


def test_first_start_publishes_the_signing_key_and_the_next_one(tmp_path: Path) -> None:
    signer = load_or_create_signer(tmp_path)
    kids = [k["kid"] for k in signer.jwks()["keys"]]
    assert len(kids) == len(set(kids)) == 2 and kids[0] == signer.jwk["kid"]
    assert signer.sign({"exp": 1})["kid"] == kids[0]


def test_rotation_promotes_the_next_key_and_keeps_the_retired_one_for_one_rotation(
        tmp_path: Path) -> None:
    before = load_or_create_signer(tmp_path)
    current, upcoming = (k["kid"] for k in before.jwks()["keys"])
    signed_before = before.sign(payload_at(datetime.now(UTC)))
    after = rotate_signing_keys(tmp_path)
    signed_after = after.sign(payload_at(datetime.now(UTC)))
    assert signed_after["kid"] == upcoming
    # a browser that cached the set before the rotation verifies what is signed after it
    assert verifies_with_raw_key(signed_after, before.jwks())
    verify_envelope(signed_after, before.jwks())
    # and a payload signed just before the rotation still verifies with the new set
    assert current in [k["kid"] for k in after.jwks()["keys"]]
    assert verifies_with_raw_key(signed_before, after.jwks())
    # a second rotation drops the first key (that is how a leaked key is removed)
    again = rotate_signing_keys(tmp_path)
    assert current not in [k["kid"] for k in again.jwks()["keys"]]
    assert len(again.jwks()["keys"]) == 3
    with pytest.raises(SignatureError, match="no Ed25519 key"):
        verify_envelope(signed_before, again.jwks())
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path.name
    assert load_or_create_signer(tmp_path).jwks() == again.jwks()


def test_an_application_server_loading_the_key_file_publishes_the_same_set(
        tmp_path: Path) -> None:
    rotate_signing_keys(tmp_path)
    service = load_or_create_signer(tmp_path)
    application = PayloadSigner.from_key_file(tmp_path / "client-signing-key.pem")
    assert application.jwks() == service.jwks()


def test_the_cli_rotates_and_prints_the_new_set(tmp_path: Path) -> None:
    before = load_or_create_signer(tmp_path).jwks()
    result = CliRunner().invoke(app, ["keys", "rotate", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["keys"][0]["kid"] == before["keys"][1]["kid"]
    assert printed == load_or_create_signer(tmp_path).jwks()
