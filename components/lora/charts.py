"""Figures of the LoRA page: the live loss chart and the overlay of past runs."""

from __future__ import annotations

import plotly.graph_objects as go

from components.i18n import t

COLORS = ("#6c4cf4", "#e8590c", "#2b8a3e", "#1971c2", "#c2255c", "#5f3dc4", "#087f5b", "#e67700")


def loss_figure(steps: list[dict], evals: list[dict], log_scale: bool) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[p["step"] for p in steps],
            y=[p["loss"] for p in steps],
            mode="lines+markers",
            name=t("lora.chart.train_loss"),
            line=dict(color=COLORS[0]),
            marker=dict(size=4),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[p["step"] for p in evals],
            y=[p["eval_loss"] for p in evals],
            mode="lines+markers",
            name=t("lora.chart.eval_loss"),
            line=dict(color=COLORS[1], dash="dash"),
            marker=dict(size=8, symbol="diamond"),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[p["step"] for p in steps],
            y=[p["lr"] for p in steps],
            mode="lines",
            name=t("lora.chart.lr"),
            yaxis="y2",
            line=dict(color="#adb5bd", width=1),
        )
    )
    fig.update_layout(
        title=t("lora.chart.title"),
        height=360,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis_title=t("lora.chart.step"),
        legend=dict(orientation="h", y=-0.2),
        yaxis=dict(title=t("lora.chart.loss"), type="log" if log_scale else "linear"),
        yaxis2=dict(
            title=t("lora.chart.lr"),
            overlaying="y",
            side="right",
            showgrid=False,
            # An overlaying axis defaults to ticks at the loss axis's gridlines (plotly's "sync" mode):
            # odd values such as 0.000241. Its own round ticks instead, in scientific notation.
            tickmode="auto",
            nticks=6,
            exponentformat="e",
            rangemode="tozero",  # a learning rate is never negative
        ),
    )
    return fig


def history_figure(runs: list[dict], log_scale: bool) -> go.Figure:
    """Every run of this session on one chart: train loss solid, eval loss dashed, one colour per run."""
    fig = go.Figure()
    for n, run in enumerate(runs):
        color = COLORS[n % len(COLORS)]
        fig.add_trace(
            go.Scatter(
                x=[p["step"] for p in run["steps"]],
                y=[p["loss"] for p in run["steps"]],
                mode="lines",
                name=f"{run['label']} · {t('lora.chart.train_loss')}",
                line=dict(color=color),
            )
        )
        if run["evals"]:
            fig.add_trace(
                go.Scatter(
                    x=[p["step"] for p in run["evals"]],
                    y=[p["eval_loss"] for p in run["evals"]],
                    mode="lines+markers",
                    name=f"{run['label']} · {t('lora.chart.eval_loss')}",
                    line=dict(color=color, dash="dash"),
                )
            )
    fig.update_layout(
        title=t("lora.history.chart"),
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis_title=t("lora.chart.step"),
        yaxis=dict(title=t("lora.chart.loss"), type="log" if log_scale else "linear"),
    )
    return fig
