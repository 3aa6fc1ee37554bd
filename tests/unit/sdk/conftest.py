"""Fixtures for the SDK tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .sdk_helpers import IntakeStub


@pytest.fixture
def intake() -> Iterator[IntakeStub]:
    stub = IntakeStub()
    yield stub
    stub.close()
