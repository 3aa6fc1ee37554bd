"""The demo web app (Starlette): ``cd examples && uvicorn growth_demo.app:app``.

* ``GET /`` — a page; anonymous visitors are in the welcome-banner experiment (page decorated
  with the config block and body classes; enrollment event ``page_view``, exposure).
* ``POST /signup`` (JSON ``{"username": ...}``) — creates an account (user ids from Redis),
  enrolls the new user mid-request (``update_user``), logs ``account_creation`` and schedules
  the leveling-up job in 48 hours.
* ``GET /api/leveling-up/{user_id}`` — the user's group, side-effect free (the response also
  carries ``X-Experiment-Enrollments``).
* ``GET /metrics`` — the SDK's counters (enrollments and exposures by experiment, group and
  source; unknown experiments; sender drops), in Prometheus text.
"""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Queue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from growth_demo.jobs import leveling_up_notice
from growth_demo.wiring import LEVELING_UP, WELCOME_BANNER, make_client, redis_url
from splitlab.sdk import Client
from splitlab.sdk.asgi import SplitlabASGIMiddleware

JOB_DELAY = timedelta(hours=48)
BANNERS = {"control": "Welcome!", "treatment": "Welcome — join 10,000 editors today!"}


def create_app(client: Client, queue: Queue) -> SplitlabASGIMiddleware:
    """The app around ``client`` (its sender delivers events after each response) and the RQ
    ``queue`` where sign-ups schedule their job."""

    async def home(request: Request) -> Response:
        manager = request.state.splitlab
        banner = manager.get_experiment(WELCOME_BANNER)
        manager.log_enrollment(WELCOME_BANNER, "page_view")
        banner.send_exposure()
        text = BANNERS.get(banner.get_assigned_group() or "control", BANNERS["control"])
        return HTMLResponse(
            "<!doctype html><html><head><title>Growth demo</title>"
            "<style>.xlab-experiment-growth-welcome-banner-treatment h1{color:#36c}</style>"
            f"</head><body><h1>{html.escape(text)}</h1>"
            "<p>Sign up: <code>POST /signup {\"username\": ...}</code></p></body></html>"
        )

    async def signup(request: Request) -> Response:
        try:
            payload: Any = await request.json()
        except ValueError:
            payload = None
        username = str(payload.get("username") or "").strip() if isinstance(payload, dict) else ""
        if not username:
            return JSONResponse({"error": "username is required"}, status_code=400)
        user_id = int(queue.connection.incr(f"{queue.name}:user-ids"))
        manager = request.state.splitlab
        manager.update_user(user_id)  # the account exists only from here on
        manager.log_enrollment(LEVELING_UP, "account_creation")
        group = manager.get_experiment(LEVELING_UP).get_assigned_group()
        job = queue.enqueue_in(JOB_DELAY, leveling_up_notice, user_id)
        return JSONResponse({"user_id": user_id, "username": username, "group": group,
                             "job_id": job.id})

    async def leveling_up(request: Request) -> Response:
        user_id = int(request.path_params["user_id"])
        return JSONResponse({"user_id": user_id,
                             "group": client.get_assignment_for_user(user_id, LEVELING_UP)})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(client.metrics.render(),
                                 media_type="text/plain; version=0.0.4")

    app = Starlette(routes=[
        Route("/", home),
        Route("/metrics", metrics),
        Route("/signup", signup, methods=["POST"]),
        Route("/api/leveling-up/{user_id:int}", leveling_up),
    ])
    return SplitlabASGIMiddleware(app, client)


def app_from_env() -> SplitlabASGIMiddleware:
    """The app configured from the environment (see :mod:`growth_demo.wiring`)."""
    queue = Queue("growth-demo", connection=Redis.from_url(redis_url()))
    return create_app(make_client(), queue)
