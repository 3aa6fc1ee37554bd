"""splitlab: a self-hostable experimentation platform speaking Test Kitchen's wire formats."""

from splitlab.core.assignment import Assignment, assign
from splitlab.core.model import Experiment

__all__ = ["Assignment", "Experiment", "assign"]
__version__ = "0.1.0"
