"""``splitlab serve`` and ``splitlab client-keys``: the service on the embedded default."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from splitlab.cli.common import err, fail


def serve_command(
    data_dir: Annotated[Path, typer.Option(help="Data directory (SQLite files, keys).")] = Path(
        "data"
    ),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    demo: Annotated[bool, typer.Option(help="Seed a few realistic experiments.")] = False,
    site_catalog: Annotated[Path | None, typer.Option(
        help="Site catalog: database name -> domain, as JSON or one name per line "
             "(env SPLITLAB_SITE_CATALOG; default: built-in).")] = None,
) -> None:
    """Start the service on the embedded default (SQLite; no other server needed).

    SIGTERM or Ctrl-C stop it gracefully (requests in flight get up to 10 s to finish).
    """
    import os
    import signal

    import uvicorn

    from splitlab.service.api_support import ensure_admin_token
    from splitlab.service.metrics import MULTIPROCESS_DIR, fresh_metrics_dir

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["SPLITLAB_DATA_DIR"] = str(data_dir)
    if demo:
        os.environ["SPLITLAB_DEMO"] = "1"
    if site_catalog is not None:
        from splitlab.errors import ConfigError
        from splitlab.registry.sites import SiteCatalog

        try:  # refuse a bad file before the workers start
            SiteCatalog.load(site_catalog.resolve())
        except ConfigError as error:
            fail(f"site catalog {error}")
        os.environ["SPLITLAB_SITE_CATALOG"] = str(site_catalog.resolve())
    if workers > 1:
        os.environ[MULTIPROCESS_DIR] = str(fresh_metrics_dir(data_dir))
    _, token_file = ensure_admin_token(os.environ.get("SPLITLAB_ADMIN_TOKEN"), data_dir)
    database = "PostgreSQL" if os.environ.get("SPLITLAB_DATABASE_URL") else f"SQLite in {data_dir}"
    where = f"http://{host}:{port}"
    token = "the value of SPLITLAB_ADMIN_TOKEN" if token_file is None else f"cat {token_file}"
    err.print(f"splitlab listening on {where} (registry: {database})\n"
              f"  config API  {where}/api/v1/experiments\n  events      {where}/v1/events\n"
              f"  API docs    {where}/docs\n"
              f"  admin token {token}", highlight=False, soft_wrap=True)
    # uvicorn stops gracefully on SIGTERM, then re-raises the signal: exit 0 when it does
    signal.signal(signal.SIGTERM, lambda _number, _frame: sys.exit(0))
    uvicorn.run(
        "splitlab.service.app:app_from_env", factory=True, host=host, port=port,
        workers=workers, log_level="warning", access_log=False, timeout_graceful_shutdown=10,
    )



def client_keys_command(
    data_dir: Annotated[Path, typer.Option(help="Data directory of the service.")] = Path("data"),
) -> None:
    """Print the JWK set of the client payload signing key (creating the key pair if absent).

    The private key stays in DATA_DIR/client-signing-key.pem (mode 0600); an application server
    that signs payloads itself loads that file with PayloadSigner.from_pem.
    """
    from splitlab.sdk.signing import KEY_FILE, load_or_create_signer

    signer = load_or_create_signer(data_dir.resolve())
    err.print(f"private key: {(data_dir / KEY_FILE).resolve()}")
    typer.echo(json.dumps(signer.jwks(), indent=2))

