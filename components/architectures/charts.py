"""The loss chart the Architectures tabs share: the training loss per step (thin) and the validation
loss at each evaluation (markers), from a job's events; `model` picks one model's events when a job
trains two (dense vs MoE)."""

from __future__ import annotations

import plotly.graph_objects as go

from components.i18n import t

MAX_POINTS = 400  # training points drawn per curve (every n-th step past that)


def loss_figure(events: list[dict], prefix: str, model: str | None = None, color: str | None = None) -> go.Figure:
    """Labels come from `prefix` + chart.train / chart.val / chart.step / chart.loss."""
    mine = [e for e in events if model is None or e.get("model") == model]
    steps = [e for e in mine if e.get("kind") == "step"]
    steps = steps[:: max(1, len(steps) // MAX_POINTS)]
    evals = [e for e in mine if e.get("kind") == "eval"]
    fig = go.Figure()
    fig.add_scatter(
        x=[e["step"] for e in steps],
        y=[e["loss"] for e in steps],
        mode="lines",
        name=t(prefix + "chart.train"),
        line={"width": 1, **({"color": color} if color else {})},
    )
    fig.add_scatter(
        x=[e["step"] for e in evals],
        y=[e["val_loss"] for e in evals],
        mode="lines+markers",
        name=t(prefix + "chart.val"),
        line={"color": "#212529"} if color else {},
    )
    fig.update_layout(
        height=320,
        margin={"t": 20, "b": 40},
        xaxis_title=t(prefix + "chart.step"),
        yaxis_title=t(prefix + "chart.loss"),
    )
    return fig
