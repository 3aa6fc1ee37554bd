"""The registry on both backends for the results store (see tests/unit/registry/conftest.py)."""

from __future__ import annotations

from tests.unit.registry.conftest import FakeClock, clock, registry

__all__ = ["FakeClock", "clock", "registry"]
