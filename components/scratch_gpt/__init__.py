"""The GPT-from-scratch page's pieces: data.py, config.py (the settings), train.py, ladder.py, saved.py, charts.py."""

from components.scratch_gpt.charts import COLORS, ladder_figure, loss_figure, next_char_figure
from components.scratch_gpt.train import (
    absorb_finished,
    baselines,
    collect,
    finish_run,
    live_view,
    resume_label,
    running_job,
    runs,
    start_run,
)

__all__ = [
    "COLORS",
    "absorb_finished",
    "baselines",
    "collect",
    "finish_run",
    "ladder_figure",
    "live_view",
    "loss_figure",
    "next_char_figure",
    "resume_label",
    "running_job",
    "runs",
    "start_run",
]
