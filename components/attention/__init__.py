"""The attention page's pieces: charts.py (heatmaps, the lines and model views, head summaries, PNG export;
also used by the scratch GPT page), teaching.py (the By hand and Positions tabs)."""

from components.attention.charts import (
    DIVERGING,
    LINES_MAX_ROWS,
    SCALE,
    axis_labels,
    group_tokens,
    heatmap_figure,
    heatmap_png,
    layer_head_figure,
    lines_figure,
    matrix_figure,
    model_view_figure,
    thumbnails,
)

__all__ = [
    "DIVERGING",
    "LINES_MAX_ROWS",
    "SCALE",
    "axis_labels",
    "group_tokens",
    "heatmap_figure",
    "heatmap_png",
    "layer_head_figure",
    "lines_figure",
    "matrix_figure",
    "model_view_figure",
    "thumbnails",
]
