"""Render a signed client payload into a page, in a way a strict Content-Security-Policy allows.

The payload goes into a JSON *data block*:
``<script type="application/json" id="splitlab-config">``.
A browser never executes a data block, so it needs no ``'unsafe-inline'`` and no hash in
``script-src``; the browser SDK (``clients/js``) reads it with ``JSON.parse`` of its text. A nonce
can still be set for policies or tooling that want every ``<script>`` element to carry one.

Standard library only: the application server renders envelopes signed elsewhere (by
:class:`splitlab.sdk.signing.PayloadSigner` in the same process, or by the splitlab service).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from splitlab.core.decoration import EnrollmentResult, body_classes, json_for_script

BOOTSTRAP_ELEMENT_ID = "splitlab-config"
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
    A payload with hashed names gives none: the classes would reveal the names.
    """
    if payload.get("salt"):
        return []
    result = EnrollmentResult()
    for name, entry in payload.get("experiments", {}).items():
        result.add_assignment(name, entry["group"], entry["subject_id"])
    return body_classes(result, prefix)
