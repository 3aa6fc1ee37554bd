"""The demo page in FastAPI: ``uvicorn frameworks_demo.fastapi_app:app`` (from ``examples/``).

Middleware order: add splitlab first and GZip after it, so GZip is outermost and splitlab
decorates the page before it is compressed (the other order works too, at the cost of a
decode and re-encode per page).
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import HTMLResponse, StreamingResponse

from splitlab.sdk.asgi import SplitlabASGIMiddleware
from splitlab.sdk.fastapi import SplitlabManager

from .wiring import BANNER, banner_page, make_client, page_parts

app = FastAPI()
app.add_middleware(SplitlabASGIMiddleware, client=make_client())
app.add_middleware(GZipMiddleware, minimum_size=500)


@app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def home(manager: SplitlabManager) -> str:
    return banner_page(manager, "FastAPI")


@app.get("/stream")
def stream(manager: SplitlabManager) -> StreamingResponse:
    parts: Iterator[str] = iter(page_parts(banner_page(manager, "FastAPI, streamed")))
    return StreamingResponse(parts, media_type="text/html")


@app.get("/api/banner")
def banner(manager: SplitlabManager) -> dict[str, str | None]:
    return {"group": manager.get_experiment(BANNER).get_assigned_group()}
