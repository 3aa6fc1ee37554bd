"""The dashboard at ``/ui``: server-rendered pages to design, launch, watch and read experiments
and to debug assignments (DESIGN.md, "Results and the dashboard"; docs/dashboard.md)."""

from splitlab.service.ui.component import UiComponent

__all__ = ["UiComponent"]
