"""splitlab: a self-hostable experimentation platform speaking Test Kitchen's wire formats."""

from splitlab.core.assignment import Assignment, assign
from splitlab.core.model import Experiment
from splitlab.core.resolution import Reason, Resolution, resolve

__all__ = ["Assignment", "Experiment", "Reason", "Resolution", "assign", "resolve"]
__version__ = "0.1.0"
