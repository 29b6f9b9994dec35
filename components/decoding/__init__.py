"""The decoding page's pieces: columns.py (the columns and their editor), runs.py, charts.py, export.py (the tab)."""

from components.decoding.charts import beam_tree_figure, distribution_figure, probability_chips
from components.decoding.runs import run_columns, run_remote_columns, show_token

__all__ = [
    "beam_tree_figure",
    "distribution_figure",
    "probability_chips",
    "run_columns",
    "run_remote_columns",
    "show_token",
]
