"""FastAPI: the request's experiment manager as a dependency.

```python
from fastapi import FastAPI
from splitlab.sdk.asgi import SplitlabASGIMiddleware
from splitlab.sdk.fastapi import SplitlabManager

app = FastAPI()
app.add_middleware(SplitlabASGIMiddleware, client=client)

@app.get("/")
def home(manager: SplitlabManager) -> ...:
    manager.get_experiment("sticky-header-2026")
```

Importing this module imports FastAPI; nothing else in the SDK does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from splitlab.sdk.manager import ExperimentManager
from splitlab.sdk.web import STATE_KEY


def experiment_manager(request: Request) -> ExperimentManager:
    """The manager :class:`~splitlab.sdk.asgi.SplitlabASGIMiddleware` built for this request;
    ``RuntimeError`` saying how to add the middleware when it did not run."""
    manager = request.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(manager, ExperimentManager):
        raise RuntimeError(
            "this request has no splitlab experiment manager: the app is not wrapped in "
            "SplitlabASGIMiddleware (add app.add_middleware(SplitlabASGIMiddleware, "
            "client=client), or serve SplitlabASGIMiddleware(app, client))")
    return manager


SplitlabManager = Annotated[ExperimentManager, Depends(experiment_manager)]
"""A path operation's parameter typed ``SplitlabManager`` receives the request's manager."""
