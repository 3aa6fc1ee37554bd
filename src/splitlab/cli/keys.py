"""``splitlab keys``: the client payload signing keys (see docs/client.md, "Key rotation")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from splitlab.cli.common import err

keys_app = typer.Typer(help="The client payload signing keys.", no_args_is_help=True)


@keys_app.command("rotate")
def rotate_command(
    data_dir: Annotated[Path, typer.Option(help="Data directory of the service.")] = Path("data"),
) -> None:
    """Make the next key the signing key, publish a new next key, keep the retired one published
    until the next rotation; print the new JWK set.

    A running service follows at its next request. Application servers that sign with the key
    file load it at start: restart them. Rotate at most once per hour (the key set's cache time),
    so every browser already holds the key that signs next.
    """
    from splitlab.sdk.signing import KEY_FILE, rotate_signing_keys

    signer = rotate_signing_keys(data_dir.resolve())
    err.print(f"signing key: {(data_dir / KEY_FILE).resolve()} (kid {signer.jwk['kid']})",
              highlight=False, soft_wrap=True)
    typer.echo(json.dumps(signer.jwks(), indent=2))
