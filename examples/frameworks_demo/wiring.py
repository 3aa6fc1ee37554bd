"""What the FastAPI app and the Django site share: the splitlab client and the page.

``SPLITLAB_URL`` is the splitlab server (config API and event intake), default
``http://127.0.0.1:8080``; it needs the ``edge-unique`` experiment ``frameworks-banner`` with
groups ``control`` and ``treatment``.
"""

from __future__ import annotations

import html
import os

from splitlab.sdk import Client, ExperimentManager, HttpConfigSource, HttpEventSender

BANNER = "frameworks-banner"


def make_client() -> Client:
    """A client reading the server's config API and sending to its intake."""
    base = os.environ.get("SPLITLAB_URL", "http://127.0.0.1:8080").rstrip("/")
    return Client(HttpConfigSource(f"{base}/api/v1/experiments"),
                  HttpEventSender(f"{base}/v1/events"))


def banner_page(manager: ExperimentManager, framework: str) -> str:
    """The home page: the banner's treatment text when in treatment; one exposure either way.

    The head script holds a ``"<body>"`` string on purpose: the decoration must skip it."""
    banner = manager.get_experiment(BANNER)
    banner.send_exposure()
    text = "Try the new editor!" if banner.is_assigned_group("treatment") else "Welcome!"
    return ("<!doctype html><html><head><meta charset='utf-8'><title>splitlab demo</title>"
            "<style>.xlab-experiment-frameworks-banner-treatment .banner{font-weight:bold}</style>"
            "<script>const template = '<body class=\"x\">';</script></head>"
            f"<body class='demo'><p class='banner'>{html.escape(text)}</p>"
            f"<p>Served by {html.escape(framework)}.</p>" + "<p>Lorem ipsum dolor.</p>" * 30
            + "</body></html>")


def page_parts(page: str) -> list[str]:
    """The page cut in pieces, as a streamed response sends it."""
    return [page[i:i + 120] for i in range(0, len(page), 120)]
