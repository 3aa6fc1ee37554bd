"""A page with a client-side experiment, bootstrapped and signed by the SDK's middleware.

Run it next to a ``splitlab serve`` (see ``examples/README.md``)::

    cd examples && SPLITLAB_URL=http://127.0.0.1:8080 \
        SPLITLAB_SIGNING_KEY=../data/client-signing-key.pem \
        uvicorn --factory client_demo.app:app_from_env --port 8000

* ``GET /`` — the page. The middleware puts the unit's signed client payload in a JSON data
  block and the body classes on ``<body>`` (so the treatment is styled on the first paint), and
  answers ``GET /.well-known/splitlab-keys.json`` with the public key. Strict CSP: scripts,
  styles and keys come from ``'self'``; only the events go to the splitlab server
  (``connect-src``).
* ``/splitlab-sdk/`` — the browser SDK (``clients/js/src``) as static ES modules.
* ``/static/`` — the page's own module (verifies the payload, applies the treatment, sends the
  exposure) and stylesheet.

Settings (environment): ``SPLITLAB_URL`` (config API for the server, intake for the browser,
default ``http://127.0.0.1:8080``), ``SPLITLAB_SIGNING_KEY`` (the service's
``client-signing-key.pem``; required), ``SPLITLAB_CLIENT_EXPERIMENTS`` (comma-separated names
of the client experiments; default: ``client-sticky-header``), ``SPLITLAB_JS_SDK_DIR``
(default: this repository's ``clients/js/src``).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from splitlab.sdk import Client, HttpConfigSource, HttpEventSender
from splitlab.sdk.asgi import SplitlabASGIMiddleware
from splitlab.sdk.bootstrap import ClientBootstrap
from splitlab.sdk.client_payload import PayloadOptions
from splitlab.sdk.web import WebOptions

STICKY_HEADER = "client-sticky-header"
"""The client experiment on the page (``edge-unique``): a sticky header in the treatment."""
HERE = Path(__file__).resolve().parent
JS_SDK = HERE.parents[1] / "clients" / "js" / "src"


def content_security_policy(server_url: str) -> str:
    """Everything from ``'self'`` (no inline script or style); events may go to the server."""
    parts = urlsplit(server_url)
    server_origin = f"{parts.scheme}://{parts.netloc}"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"connect-src 'self' {server_origin}; object-src 'none'; base-uri 'none'")


def create_app(client: Client, bootstrap: ClientBootstrap, server_url: str,
               js_sdk: Path = JS_SDK) -> SplitlabASGIMiddleware:
    """The page app around ``client``; the browser posts its events to ``server_url``."""
    intake = html.escape(f"{server_url.rstrip('/')}/v1/events", quote=True)
    csp = content_security_policy(server_url)

    async def page(request: Request) -> Response:
        return HTMLResponse(
            '<!doctype html><html><head><meta charset="utf-8"><title>Client demo</title>'
            '<link rel="stylesheet" href="/static/page.css">'
            '<script type="module" src="/static/page.js"></script></head>'
            f'<body data-splitlab-intake="{intake}" '
            f'data-splitlab-experiment="{STICKY_HEADER}">'
            '<header class="site-header">Client demo</header>'
            "<main><p>Reading an article.</p></main></body></html>",
            headers={"Content-Security-Policy": csp, "Cache-Control": "private, no-store"},
        )

    app = Starlette(routes=[
        Route("/", page),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Mount("/splitlab-sdk", StaticFiles(directory=js_sdk)),
        Mount("/static", StaticFiles(directory=HERE / "static")),
    ])
    return SplitlabASGIMiddleware(app, client, WebOptions(bootstrap=bootstrap))


def app_from_env() -> SplitlabASGIMiddleware:
    """The app configured from the environment (see the module docstring)."""
    server_url = os.environ.get("SPLITLAB_URL", "http://127.0.0.1:8080").rstrip("/")
    names = os.environ.get("SPLITLAB_CLIENT_EXPERIMENTS", STICKY_HEADER)
    options = PayloadOptions(client_experiments=frozenset(n.strip() for n in names.split(",")))
    bootstrap = ClientBootstrap.from_key_file(Path(os.environ["SPLITLAB_SIGNING_KEY"]), options)
    client = Client(HttpConfigSource(f"{server_url}/api/v1/experiments"),
                    HttpEventSender(f"{server_url}/v1/events"), os.environ.get("SPLITLAB_SITE"))
    js_sdk = Path(os.environ.get("SPLITLAB_JS_SDK_DIR", str(JS_SDK)))
    return create_app(client, bootstrap, server_url, js_sdk)
