"""Render a signed client payload into a page, in a way a strict Content-Security-Policy allows.

:class:`ClientBootstrap` turns this on in the web middlewares (``WebOptions(bootstrap=...)``):
every HTML page then carries the request's signed payload and its body classes, and the
middleware publishes the signer's public keys on the application's own origin.

The payload goes into a JSON *data block*:
``<script type="application/json" id="splitlab-config">``.
A browser never executes a data block, so it needs no ``'unsafe-inline'`` and no hash in
``script-src``; the browser SDK (``clients/js``) reads it with ``JSON.parse`` of its text. A nonce
can still be set for policies or tooling that want every ``<script>`` element to carry one.

Standard library only: the application server renders envelopes signed elsewhere (by
:class:`splitlab.sdk.signing.PayloadSigner` in the same process, which needs ``cryptography``,
or by the splitlab service).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from splitlab.core.decoration import EnrollmentResult, body_classes, json_for_script
from splitlab.sdk.client_payload import PayloadOptions, decided_entries

BOOTSTRAP_ELEMENT_ID = "splitlab-config"
KEYS_PATH = "/.well-known/splitlab-keys.json"
_NONCE = re.compile(r"^[A-Za-z0-9+/_=-]{1,200}$")


def render_bootstrap(
    envelope: Mapping[str, str],
    *,
    nonce: str | None = None,
    element_id: str = BOOTSTRAP_ELEMENT_ID,
) -> str:
    """The ``<script type="application/json">`` element that carries ``envelope``.

    The JSON is escaped so that no ``</script>``, ``<!--`` or line separator can end the
    element early. ``nonce`` must be a base64 token (raises ``ValueError`` otherwise).
    """
    if nonce is not None and not _NONCE.match(nonce):
        raise ValueError("nonce must be a base64 token")
    attributes = f' id="{html.escape(element_id, quote=True)}"'
    if nonce is not None:
        attributes += f' nonce="{nonce}"'
    return f'<script type="application/json"{attributes}>{json_for_script(envelope)}</script>'


def payload_body_classes(payload: Mapping[str, Any], prefix: str = "xlab") -> list[str]:
    """The body classes of a (plain-named) payload's enrollments, for the first HTML.

    Put them on ``<body>`` so the treatment is styled before any script runs (no flash).
    A payload with hashed names gives none: the classes would reveal the names. Entries whose
    condition the browser decides give none either: the server does not know the answer.
    """
    if payload.get("salt"):
        return []
    result = EnrollmentResult()
    for name, entry in decided_entries(payload):
        result.add_assignment(name, entry["group"], entry["subject_id"])
    return body_classes(result, prefix)


class EnvelopeSigner(Protocol):
    """What signs payloads for the page (:class:`splitlab.sdk.signing.PayloadSigner` is one)."""

    def sign(self, payload: Mapping[str, Any]) -> dict[str, str]:
        """The envelope of ``payload``."""
        ...

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys that verify the envelopes, as a JWK set."""
        ...


@dataclass(frozen=True, slots=True)
class ClientBootstrap:
    """Bootstrap settings for the web middlewares.

    ``signer`` signs each page's payload (built with ``payload``: which experiments run on the
    client, TTL, hashed names). ``keys_path`` is where the middleware answers ``GET`` with the
    signer's JWK set on the application's origin (the browser SDK's default ``keysUrl``), so a
    strict CSP needs no ``connect-src`` for keys; ``None`` leaves that route to the application.
    """

    signer: EnvelopeSigner
    payload: PayloadOptions = field(default_factory=PayloadOptions)
    keys_path: str | None = KEYS_PATH

    @classmethod
    def from_key_file(cls, path: Path, payload: PayloadOptions | None = None) -> ClientBootstrap:
        """Sign with the service's key file (``SPLITLAB_DATA_DIR/client-signing-key.pem``) and
        publish the next and previous keys beside it too (read once: restart after
        ``splitlab keys rotate``); needs the ``cryptography`` package (``splitlab[sign]``)."""
        from splitlab.sdk.signing import PayloadSigner

        return cls(PayloadSigner.from_key_file(Path(path)), payload or PayloadOptions())
