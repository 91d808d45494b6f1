"""Plotting helpers shared by ``paper_figures/`` and the notebook: the paper style and
compute-budget colour scale (``style``), reading a results directory (``results``), the
analyses the figures share, computed once per results directory (``analyses``), the
command-line wrapper of a figure script (``figure``), and a synthetic results store for
tests and demos (``synthetic_store``)."""

from scaling.plotting.results import MissingInput, Results, load_results
from scaling.plotting.style import LABELS, METHOD_STYLES, BudgetScale, paper_style, save

__all__ = [
    "LABELS",
    "METHOD_STYLES",
    "BudgetScale",
    "MissingInput",
    "Results",
    "load_results",
    "paper_style",
    "save",
]
