"""Ed25519 signing of client payloads, and the key pair behind it.

A signed payload is an *envelope*::

    {"alg": "EdDSA", "kid": "<RFC 7638 thumbprint>", "payload": "<canonical JSON text>",
     "sig": "<base64url Ed25519 signature over the UTF-8 bytes of payload>"}

The payload travels as text, so a verifier checks the exact bytes that were signed and parses
them only afterwards; nobody has to re-canonicalise JSON. Public keys are published as a JWK set
(``kty: OKP``, ``crv: Ed25519``, RFC 8037).

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from splitlab.core.model import canonical_json
from splitlab.datadir import private_dir
from splitlab.errors import SignatureError
from splitlab.sdk.client_payload import payload_bytes

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALGORITHM = "EdDSA"
KEY_FILE = "client-signing-key.pem"


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


@dataclass(frozen=True, slots=True)
class PayloadSigner:
    """Signs payloads with one Ed25519 private key."""

    private_key: Ed25519PrivateKey
    jwk: dict[str, str] = field(init=False, compare=False)
    """The public half, as a JWK (with its ``kid``); derived once, since every page is signed."""

    def __post_init__(self) -> None:
        from cryptography.hazmat.primitives import serialization

        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        object.__setattr__(self, "jwk", public_jwk(raw))

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK set to publish at the well-known URL."""
        return {"keys": [self.jwk]}

    def sign(self, payload: Mapping[str, Any]) -> dict[str, str]:
        """The envelope of ``payload`` (see the module docstring)."""
        data = payload_bytes(payload)
        signature = self.private_key.sign(data)
        return {"alg": ALGORITHM, "kid": self.jwk["kid"], "payload": data.decode("utf-8"),
                "sig": b64url(signature)}

    @classmethod
    def from_pem(cls, pem: bytes) -> PayloadSigner:
        """A signer from a PKCS#8 PEM private key (what :func:`load_or_create_signer` writes)."""
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, _crypto().Ed25519PrivateKey):
            raise TypeError("the signing key must be an Ed25519 private key")
        return cls(key)


def load_or_create_signer(data_dir: Path) -> PayloadSigner:
    """The signer whose key lives in ``data_dir``; a key pair is generated on first use.

    The private key file is created with mode 0600 and published with an atomic link, so several
    worker processes starting at once end up with the same key.
    """
    from cryptography.hazmat.primitives import serialization

    path = data_dir / KEY_FILE
    if not path.exists():
        private_dir(data_dir)
        pem = _crypto().Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        handle, temporary = tempfile.mkstemp(dir=data_dir, prefix=".key-")  # mode 0600
        try:
            os.write(handle, pem)
            os.fsync(handle)
            os.close(handle)
            with contextlib.suppress(FileExistsError):  # another process won: use its key
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return PayloadSigner.from_pem(path.read_bytes())


def verify_envelope(
    envelope: Mapping[str, Any], jwks: Mapping[str, Any], now: int | None = None
) -> dict[str, Any]:
    """The payload of ``envelope`` once its signature verifies against a key of ``jwks``.

    Raises :class:`SignatureError` when the envelope is malformed, the key is unknown, the
    signature does not match, or ``now`` (Unix seconds) is past the payload's ``exp``.
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
    if now is not None and now >= int(payload.get("exp", 0)):
        raise SignatureError("payload has expired")
    return payload
