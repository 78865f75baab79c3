"""Step 2, checking the data: the audit and the map (one module per tab)."""

from .pane import CheckPane

__all__ = ["CheckPane"]
