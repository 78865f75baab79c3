"""Step 5 of the window, results: a package with a module per tab (runs, evaluate, predict,
export) and the pane that holds them together."""

from .pane import ResultsPane

__all__ = ["ResultsPane"]
