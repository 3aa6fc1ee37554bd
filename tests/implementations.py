"""Both implementations of assignment, as a fixture: the Python reference and the C accelerator.

Test modules import :func:`implementation` so that every vector runs through both.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import unavailable
from splitlab.core import assignment
from splitlab.core.assignment import Assignment, Assignments, Identifier
from splitlab.core.model import Experiment

Single = Callable[..., Assignment]
Batch = Callable[[list[Identifier], Experiment, str | None], Assignments]


@pytest.fixture(params=["pure", "accelerated"])
def implementation(request: pytest.FixtureRequest) -> tuple[Single, Batch]:
    """``(assign, assign_batch)`` of one implementation (skipped when the C one is not built)."""
    if request.param == "accelerated":
        if not assignment.ACCELERATED:
            unavailable("the C accelerator splitlab.core._tkv1 is not built")
        return assignment.accelerated_assign, assignment.accelerated_assign_batch
    return assignment.pure_assign, assignment.pure_assign_batch
