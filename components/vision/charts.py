"""Plotly figures of the vision page."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from components.i18n import t


def probability_bars(labels: list[str], probs: np.ndarray, title: str) -> go.Figure:
    order = np.argsort(probs)
    fig = go.Figure(
        go.Bar(
            x=probs[order],
            y=[labels[i] for i in order],
            orientation="h",
            text=[f"{p:.1%}" for p in probs[order]],
            textposition="auto",
            marker_color="#6c4cf4",
        )
    )
    fig.update_layout(
        title=title,
        xaxis={"range": [0, 1], "tickformat": ".0%"},
        height=120 + 28 * len(labels),
        margin={"l": 10, "r": 10, "t": 50, "b": 30},
    )
    return fig


def embedding_map(
    points: np.ndarray, names: list[str], query: np.ndarray | None, query_label: str, title: str
) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=points[:, 0],
            y=points[:, 1],
            mode="markers+text",
            text=names,
            textposition="top center",
            marker={"size": 9, "color": "#6c4cf4"},
            name=t("vision.search.map_images"),
        )
    )
    if query is not None:
        fig.add_trace(
            go.Scatter(
                x=query[:, 0],
                y=query[:, 1],
                mode="markers+text",
                text=[query_label],
                textposition="bottom center",
                marker={"size": 14, "symbol": "star", "color": "#f45c4c"},
                name=t("vision.search.map_query"),
            )
        )
    fig.update_layout(
        title=title, height=460, margin={"l": 10, "r": 10, "t": 50, "b": 30}, xaxis_title="PC 1", yaxis_title="PC 2"
    )
    return fig


def training_curves(steps: list[dict], epochs: list[dict], title: str) -> go.Figure:
    """Loss per step (left axis) and train/test accuracy per epoch (right axis)."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[s["step"] for s in steps], y=[s["loss"] for s in steps], mode="lines", name=t("vision.vqa.loss"))
    )
    for key, name in (("train_acc", t("vision.vqa.train_acc")), ("test_acc", t("vision.vqa.test_acc"))):
        fig.add_trace(
            go.Scatter(
                x=[e["step"] for e in epochs], y=[e[key] for e in epochs], mode="lines+markers", name=name, yaxis="y2"
            )
        )
    fig.update_layout(
        title=title,
        height=360,
        xaxis_title=t("vision.vqa.step"),
        yaxis={"title": t("vision.vqa.loss")},
        yaxis2={
            "title": t("vision.vqa.accuracy"),
            "overlaying": "y",
            "side": "right",
            "range": [0, 1],
            "tickmode": "linear",  # round ticks of its own, not the loss axis's gridlines ("sync")
            "tick0": 0,
            "dtick": 0.2,
            "tickformat": ".0%",
            "showgrid": False,
        },
        margin={"l": 10, "r": 10, "t": 50, "b": 30},
        legend={"orientation": "h"},
    )
    return fig
