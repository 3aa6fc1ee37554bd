"""Ed25519 signing of client payloads, and the key pair behind it.

A signed payload is an *envelope*::

    {"alg": "EdDSA", "kid": "<RFC 7638 thumbprint>", "payload": "<canonical JSON text>",
     "sig": "<base64url Ed25519 signature over the UTF-8 bytes of payload>"}

The payload travels as text, so a verifier checks the exact bytes that were signed and parses
them only afterwards; nobody has to re-canonicalise JSON. Public keys are published as a JWK set
(``kty: OKP``, ``crv: Ed25519``, RFC 8037).

Rotation: a data directory holds the *current* key (which signs), the *next* key (published
ahead, so verifiers that cached the set already know it when it starts signing) and, after a
rotation, the *previous* key (still published, so payloads signed just before the rotation
verify). :func:`rotate_signing_keys` makes the next key current.

Signing needs the ``cryptography`` package (the ``sign`` extra); everything else in the SDK runs
without it, so the import is deferred to the functions that need it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from splitlab.core.model import canonical_json
from splitlab.errors import SignatureError
from splitlab.sdk.client_payload import payload_bytes

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALGORITHM = "EdDSA"
KEY_FILE = "client-signing-key.pem"
"""The current key: it signs."""
NEXT_KEY_FILE = "client-signing-key.next.pem"
"""The next key: published, signs after the next rotation."""
PREVIOUS_KEY_FILE = "client-signing-key.previous.pem"
"""The key retired by the last rotation: published until the next one."""


def b64url(data: bytes) -> str:
    """Base64url without padding (JOSE)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url`; raises :class:`SignatureError` on malformed input."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as error:
        raise SignatureError(f"not base64url: {error}") from None


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError(
            "signing client payloads needs the 'cryptography' package: "
            "pip install 'splitlab[sign]'"
        ) from None
    return ed25519


def public_jwk(raw_public_key: bytes) -> dict[str, str]:
    """The JWK of an Ed25519 public key, with its RFC 7638 thumbprint as ``kid``."""
    x = b64url(raw_public_key)
    thumbprint = hashlib.sha256(canonical_json({"crv": "Ed25519", "kty": "OKP", "x": x}).encode())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": b64url(thumbprint.digest()),
            "alg": ALGORITHM, "use": "sig"}


def _jwk_of(private_key: Ed25519PrivateKey) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization

    return public_jwk(private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw))


@dataclass(frozen=True, slots=True)
class PayloadSigner:
    """Signs payloads with one Ed25519 private key; ``also_published`` are public JWKs published
    beside it (the next and previous keys of a rotation)."""

    private_key: Ed25519PrivateKey
    also_published: tuple[dict[str, str], ...] = ()
    jwk: dict[str, str] = field(init=False, compare=False)
    """The public half, as a JWK (with its ``kid``); derived once, since every page is signed."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "jwk", _jwk_of(self.private_key))

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK set to publish at the well-known URL: the signing key first, then the others
        (each ``kid`` once)."""
        keys = [self.jwk]
        for jwk in self.also_published:
            if all(k["kid"] != jwk["kid"] for k in keys):
                keys.append(jwk)
        return {"keys": keys}

    def sign(self, payload: Mapping[str, Any]) -> dict[str, str]:
        """The envelope of ``payload`` (see the module docstring)."""
        data = payload_bytes(payload)
        signature = self.private_key.sign(data)
        return {"alg": ALGORITHM, "kid": self.jwk["kid"], "payload": data.decode("utf-8"),
                "sig": b64url(signature)}

    @classmethod
    def from_pem(cls, pem: bytes) -> PayloadSigner:
        """A signer from a PKCS#8 PEM private key (what :func:`load_or_create_signer` writes)."""
        return cls(_private_key(pem))

    @classmethod
    def from_key_file(cls, path: Path) -> PayloadSigner:
        """A signer with the key in ``path`` that also publishes the next and previous keys
        lying beside it (see the module doc), when they exist."""
        others = []
        for name in (NEXT_KEY_FILE, PREVIOUS_KEY_FILE):
            with contextlib.suppress(FileNotFoundError):
                others.append(_jwk_of(_private_key((path.parent / name).read_bytes())))
        return cls(_private_key(path.read_bytes()), tuple(others))


def _private_key(pem: bytes) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, _crypto().Ed25519PrivateKey):
        raise TypeError("the signing key must be an Ed25519 private key")
    private: Ed25519PrivateKey = key
    return private


def _write_private(data_dir: Path, pem: bytes) -> str:
    """A new file of mode 0600 holding ``pem``, synced; its path (for a link or a rename)."""
    handle, temporary = tempfile.mkstemp(dir=data_dir, prefix=".key-")  # mode 0600
    try:
        os.write(handle, pem)
        os.fsync(handle)
    finally:
        os.close(handle)
    return temporary


def _create_key_if_absent(data_dir: Path, name: str) -> None:
    """Generate a key into ``name`` unless it exists; an atomic link, so processes racing to
    create it all end up with the same key."""
    from cryptography.hazmat.primitives import serialization

    if (data_dir / name).exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    pem = _crypto().Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = _write_private(data_dir, pem)
    try:
        with contextlib.suppress(FileExistsError):  # another process won: use its key
            os.link(temporary, data_dir / name)
    finally:
        os.unlink(temporary)


def load_or_create_signer(data_dir: Path) -> PayloadSigner:
    """The signer whose keys live in ``data_dir``; the current and next keys are generated on
    first use (mode 0600, published with an atomic link, so several worker processes starting
    at once end up with the same keys)."""
    for name in (KEY_FILE, NEXT_KEY_FILE):
        _create_key_if_absent(data_dir, name)
    return PayloadSigner.from_key_file(data_dir / KEY_FILE)


def rotate_signing_keys(data_dir: Path) -> PayloadSigner:
    """Make the next key current, keep the current one published as the previous key (the key
    it replaces is dropped), generate a new next key; the new signer.

    Every step is an atomic rename or link, so a process loading the keys meanwhile sees either
    the old or the new current key, each with its set. Run one rotation at a time.
    """
    load_or_create_signer(data_dir)
    retired = _write_private(data_dir, (data_dir / KEY_FILE).read_bytes())
    os.replace(retired, data_dir / PREVIOUS_KEY_FILE)
    os.replace(data_dir / NEXT_KEY_FILE, data_dir / KEY_FILE)
    return load_or_create_signer(data_dir)


def verify_envelope(
    envelope: Mapping[str, Any], jwks: Mapping[str, Any], now: float | None = None
) -> dict[str, Any]:
    """The payload of ``envelope`` once its signature verifies against the key of ``jwks`` with
    its ``kid`` (any key of the set: the current, next or previous one of a rotation).

    Raises :class:`SignatureError` when the envelope is malformed, the key is unknown, the
    signature does not match, or the payload has expired: ``now`` (Unix seconds; the current
    time when ``None``) is at or past its ``exp`` (a payload without ``exp`` never verifies).
    """
    from cryptography.exceptions import InvalidSignature

    text, kid = envelope.get("payload"), envelope.get("kid")
    if not isinstance(text, str) or not isinstance(envelope.get("sig"), str):
        raise SignatureError("envelope needs string 'payload' and 'sig'")
    keys = [k for k in jwks.get("keys", []) if isinstance(k, Mapping) and k.get("kid") == kid]
    if not keys or keys[0].get("crv") != "Ed25519":
        raise SignatureError(f"no Ed25519 key with kid {kid!r}")
    public = _crypto().Ed25519PublicKey.from_public_bytes(b64url_decode(str(keys[0]["x"])))
    try:
        public.verify(b64url_decode(envelope["sig"]), text.encode("utf-8"))
    except InvalidSignature:
        raise SignatureError("signature does not match the payload") from None
    payload: dict[str, Any] = json.loads(text)
    expires = payload.get("exp") if isinstance(payload, dict) else None
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        raise SignatureError("payload has no numeric 'exp'")
    if (time.time() if now is None else now) >= expires:
        raise SignatureError("payload has expired")
    return payload
