"""splitlab: a self-hostable experimentation platform speaking Test Kitchen's wire formats.

``assign_many`` (from :mod:`splitlab.bulk`) is loaded on first use, so ``import splitlab`` stays
as light as the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from splitlab.core.assignment import Assignment, assign
from splitlab.core.model import Experiment
from splitlab.core.resolution import Reason, Resolution, resolve

if TYPE_CHECKING:
    from splitlab.bulk import assign_many

__all__ = [
    "Assignment", "Experiment", "Reason", "Resolution", "assign", "assign_many", "resolve",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``splitlab.assign_many``, imported when first asked for (PEP 562)."""
    if name == "assign_many":
        from splitlab.bulk import assign_many

        globals()[name] = assign_many
        return assign_many
    raise AttributeError(f"module 'splitlab' has no attribute {name!r}")
