"""How every part of the demo (web app, RQ job, script) builds its splitlab client.

Settings come from the environment:

* ``SPLITLAB_URL`` — the splitlab server (config API and event intake), default
  ``http://127.0.0.1:8080``.
* ``SPLITLAB_SITE`` — the site whose sample rates apply (default: none).
* ``SPLITLAB_EXAMPLE_NOW`` — an ISO 8601 time to use as "now" (to replay the job that runs 48
  hours after sign-up without waiting two days).
* ``REDIS_URL`` — the job queue, default ``redis://127.0.0.1:6379/0``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

from splitlab.core.model import parse_time
from splitlab.sdk import Client, HttpConfigSource, HttpEventSender

WELCOME_BANNER = "growth-welcome-banner"
"""An ``edge-unique`` experiment: which banner anonymous visitors see on the home page."""
LEVELING_UP = "growth-leveling-up-notice"
"""An ``mw-user`` experiment: which "leveling up" notification a new user gets after 48 hours."""


def server_url() -> str:
    return os.environ.get("SPLITLAB_URL", "http://127.0.0.1:8080").rstrip("/")


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def clock() -> Callable[[], datetime]:
    """The real clock, or the fixed time in ``SPLITLAB_EXAMPLE_NOW``."""
    fixed = parse_time(os.environ.get("SPLITLAB_EXAMPLE_NOW"), "SPLITLAB_EXAMPLE_NOW")
    if fixed is None:
        return lambda: datetime.now(UTC)
    return lambda: fixed


def make_client() -> Client:
    """A client reading the server's config API (polled, with ETag) and sending to its intake."""
    base = server_url()
    return Client(
        HttpConfigSource(f"{base}/api/v1/experiments"),
        HttpEventSender(f"{base}/v1/events"),
        os.environ.get("SPLITLAB_SITE"),
        clock=clock(),
    )
