"""``splitlab keys``: the client payload signing keys (see docs/client.md, "Key rotation")."""

from __future__ import annotations

import json

import typer

from splitlab.cli.common import DataDirOption, err, require_extra
from splitlab.datadir import data_dir as find_data_dir

keys_app = typer.Typer(help="The client payload signing keys.", no_args_is_help=True)


@keys_app.command("rotate")
def rotate_command(
    data_dir: DataDirOption = None,
) -> None:
    """Make the next key the signing key, publish a new next key, keep the retired one published
    until the next rotation; print the new JWK set.

    A running service follows at its next request. Application servers that sign with the key
    file load it at start: restart them. Rotate at most once per hour (the key set's cache time),
    so every browser already holds the key that signs next.
    """
    require_extra("sign", "cryptography")
    from splitlab.sdk.signing import KEY_FILE, rotate_signing_keys

    directory = find_data_dir(data_dir)
    signer = rotate_signing_keys(directory)
    err.print(f"signing key: {directory / KEY_FILE} (kid {signer.jwk['kid']})",
              highlight=False, soft_wrap=True)
    typer.echo(json.dumps(signer.jwks(), indent=2))
