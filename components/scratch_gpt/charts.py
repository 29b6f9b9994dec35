"""The GPT-from-scratch page's figures: the loss curves, the ladder of models, the next token's probabilities."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from components.i18n import t

COLORS = ("#6c4cf4", "#e8590c", "#2b8a3e", "#1971c2", "#c2255c", "#5f3dc4", "#087f5b", "#e67700")


def loss_figure(current: dict | None, past: list[dict], baselines: dict[str, float], log_scale: bool) -> go.Figure:
    """Train loss (thin) and validation loss (markers) of the current run, past runs' validation curves
    faded behind it, and the two baselines a model must beat: uniform guessing and character frequencies."""
    fig = go.Figure()
    for n, run in enumerate(past):
        fig.add_trace(
            go.Scatter(
                x=[e["step"] for e in run["evals"]],
                y=[e["val_loss"] for e in run["evals"]],
                mode="lines",
                name=f"{run['label']} · {t('scratch_gpt.chart.val')}",
                opacity=0.45,
                line={"color": COLORS[(n + 1) % len(COLORS)], "dash": "dot"},
            )
        )
    if current is not None:
        steps = current["steps"][:: max(1, len(current["steps"]) // 500)]  # at most ~500 points on screen
        fig.add_trace(
            go.Scatter(
                x=[s["step"] for s in steps],
                y=[s["loss"] for s in steps],
                mode="lines",
                name=f"{current['label']} · {t('scratch_gpt.chart.train')}",
                line={"color": COLORS[0], "width": 1},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[e["step"] for e in current["evals"]],
                y=[e["val_loss"] for e in current["evals"]],
                mode="lines+markers",
                name=f"{current['label']} · {t('scratch_gpt.chart.val')}",
                line={"color": COLORS[1]},
                marker={"size": 7, "symbol": "diamond"},
            )
        )
    # Plotly places a shape on a log axis by its value but an annotation by the value's log10: each
    # baseline's line and label are added separately, so both sit at the baseline on either scale.
    for name, value in baselines.items():
        fig.add_shape(
            type="line",
            xref="paper",
            x0=0,
            x1=1,
            yref="y",
            y0=value,
            y1=value,
            line={"color": "#868e96", "dash": "dash", "width": 1},
        )
        fig.add_annotation(
            xref="paper",
            x=1,
            xanchor="right",
            yref="y",
            y=math.log10(value) if log_scale else value,
            yanchor="bottom",
            text=f"{name} {value:.2f}",
            showarrow=False,
        )
    low, high = loss_span(fig, baselines.values())
    fig.update_layout(
        title=t("scratch_gpt.chart.title"),
        height=380,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title=t("scratch_gpt.chart.step"),
        legend={"orientation": "h", "y": -0.2},
        yaxis={
            "title": t("scratch_gpt.chart.loss"),
            "type": "log" if log_scale else "linear",
            # a log axis's range is in log10 units too
            "range": [math.log10(low), math.log10(high)] if log_scale else [low, high],
        },
    )
    return fig


def loss_span(fig: go.Figure, baselines) -> tuple[float, float]:
    """The losses the chart must show (every finite, positive y and the baselines), with a margin."""
    ys = [float(y) for trace in fig.data for y in trace.y if y is not None]
    ys = [y for y in [*ys, *baselines] if math.isfinite(y) and y > 0] or [1.0]
    return min(ys) * 0.9, max(ys) * 1.1


def ladder_figure(results: list[dict], unigram: float | None = None) -> go.Figure:
    """Each rung's validation loss as a bar, with the character-frequency (unigram) line to beat."""
    labels = [t(f"scratch_gpt.rung.{r['rung']}") for r in results]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=[r["val_loss"] for r in results],
            marker_color=COLORS[: len(results)],
            text=[f"{r['val_loss']:.3f}" for r in results],
            textposition="outside",
            customdata=[[r["params"], r["seconds"]] for r in results],
            hovertemplate="%{x}<br>val %{y:.4f}<br>%{customdata[0]:,} params<br>%{customdata[1]:.1f} s<extra></extra>",
        )
    )
    if unigram is not None:
        fig.add_hline(
            y=unigram,
            line={"color": "#868e96", "dash": "dash", "width": 1},
            annotation_text=f"{t('scratch_gpt.chart.unigram')} {unigram:.2f}",
            annotation_position="top right",
        )
    fig.update_layout(
        title=t("scratch_gpt.ladder.chart"),
        height=340,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis_title=t("scratch_gpt.chart.loss"),
    )
    return fig


def count_table_figure(tokens: list[str], table: list[list[int]]) -> go.Figure:
    """The bigram's table of counts for its most frequent tokens: row = this token, column = the next one."""
    labels = [{" ": "␣", "\n": "⏎"}.get(c, repr(c)[1:-1] or "∅") for c in tokens]
    labels = [label if labels.count(label) == 1 else f"{label} ({i})" for i, label in enumerate(labels)]
    counts = np.asarray(table)
    fig = go.Figure(
        go.Heatmap(
            z=np.log10(1 + counts),  # colour by order of magnitude: a few pairs dominate
            x=labels,
            y=labels,
            text=counts,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hovertemplate="%{y} → %{x}: %{text:,}<extra></extra>",
        )
    )
    fig.update_layout(
        title=t("scratch_gpt.ladder.table_title"),
        height=520,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"title": t("scratch_gpt.ladder.table_next"), "type": "category"},
        yaxis={"title": t("scratch_gpt.ladder.table_current"), "type": "category", "autorange": "reversed"},
    )
    return fig


def next_char_figure(probs: np.ndarray, itos: list[str], k: int = 20) -> go.Figure:
    top = np.argsort(-probs)[:k]
    labels = [repr(itos[i])[1:-1] or "␣" for i in top]
    labels = [label if label != " " else "␣" for label in labels]
    fig = go.Figure(
        go.Bar(
            x=probs[top],
            y=labels,
            orientation="h",
            marker_color=COLORS[3],
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_layout(
        title=t("scratch_gpt.inspect.next_title"),
        height=max(300, 22 * k + 80),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis={"autorange": "reversed", "type": "category"},
        xaxis={"tickformat": ".0%"},
    )
    return fig
