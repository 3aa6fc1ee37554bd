"""``splitlab serve`` and ``splitlab client-keys``: the service on the embedded default."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from splitlab.cli.common import DataDirOption, err, fail, require_extra
from splitlab.datadir import ENV as DATA_DIR_ENV
from splitlab.datadir import data_dir as find_data_dir
from splitlab.datadir import private_dir


def serve_command(
    data_dir: DataDirOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    demo: Annotated[bool, typer.Option(help="Seed a few realistic experiments.")] = False,
    site_catalog: Annotated[Path | None, typer.Option(
        help="Site catalog: database name -> domain, as JSON or one name per line "
             "(env SPLITLAB_SITE_CATALOG; default: built-in).")] = None,
    results_interval: Annotated[float, typer.Option(
        envvar="SPLITLAB_RESULTS_INTERVAL",
        help="Seconds between results runs (0: off; run `splitlab results run` instead).")] = 300,
    schemas: Annotated[Path | None, typer.Option(
        "--schemas", help="Event schema repository: a checkout laid out as Wikimedia's "
        "(jsonschema/<title>/<X.Y.Z>[.yaml|.json]), looked in before the built-in schemas "
        "(env SPLITLAB_SCHEMA_REPOSITORY).")] = None,
) -> None:
    """Start the service on the embedded default (SQLite; no other server needed).

    SIGTERM or Ctrl-C stop it gracefully (requests in flight get up to 10 s to finish).
    """
    import os
    import signal

    require_extra("server", "uvicorn", "starlette", "orjson", "sqlalchemy", "cryptography")
    import uvicorn

    from splitlab.service.api_support import ensure_admin_token
    from splitlab.service.metrics import MULTIPROCESS_DIR, fresh_metrics_dir

    data_dir = private_dir(find_data_dir(data_dir))
    os.environ[DATA_DIR_ENV] = str(data_dir)
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
    if results_interval < 0:
        fail("--results-interval must be 0 or more")
    os.environ["SPLITLAB_RESULTS_INTERVAL"] = str(results_interval)
    if schemas is not None:
        if not schemas.is_dir():
            fail(f"--schemas {schemas} is not a directory")
        os.environ["SPLITLAB_SCHEMA_REPOSITORY"] = str(schemas.resolve())
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
    options: dict[str, Any] = {
        "app": "splitlab.service.app:app_from_env", "factory": True, "host": host, "port": port,
        "log_level": "warning", "access_log": False, "timeout_graceful_shutdown": 10}
    if workers > 1:  # a socket per worker: connections spread evenly (splitlab.service.workers)
        from splitlab.service.workers import StartupError, Supervisor

        try:
            Supervisor(options, workers).run()
        except OSError as error:
            fail(f"cannot listen on {host}:{port}: {error.strerror or error}")
        except StartupError as error:
            fail(f"{error}; see its output above", code=3)
        return
    # uvicorn stops gracefully on SIGTERM, then re-raises the signal: exit 0 when it does
    signal.signal(signal.SIGTERM, lambda _number, _frame: sys.exit(0))
    uvicorn.run(**options)



def client_keys_command(data_dir: DataDirOption = None) -> None:
    """Print the JWK set of the client payload signing key (creating the key pair if absent).

    The private key stays in DATA_DIR/client-signing-key.pem (mode 0600); an application server
    that signs payloads itself loads that file with PayloadSigner.from_pem.
    """
    require_extra("sign", "cryptography")
    from splitlab.sdk.signing import KEY_FILE, load_or_create_signer

    directory = find_data_dir(data_dir)
    signer = load_or_create_signer(directory)
    err.print(f"private key: {directory / KEY_FILE}")
    typer.echo(json.dumps(signer.jwks(), indent=2))

