"""A whole service (every area, the real composition of app.py) over a temporary data dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from splitlab.service.app import create_app
from splitlab.service.settings import Settings

TOKEN = "test-admin-token"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
ROW: dict[str, Any] = {"name": "client-button-exp", "groups": ["control", "treatment"],
                       "sample_rate": {"default": 1.0}, "user_identifier_type": "edge-unique"}


def whole_service(tmp_path: Path, **settings: Any) -> TestClient:
    """A TestClient of the full application; 5xx come back as responses, not exceptions."""
    config = Settings(data_dir=tmp_path, admin_token=TOKEN, **settings)
    return TestClient(create_app(config), raise_server_exceptions=False)


def create_experiment(client: TestClient, row: dict[str, Any] | None = None) -> str:
    """Create ``row`` (default :data:`ROW`) through the admin API; its ETag."""
    response = client.post("/api/v1/experiments", json=row or ROW, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.headers["etag"]
