"""Figures and tables of the classifier page: data view, training curves, results, attributions."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from components.i18n import strings, t

COLORS = ("#6c4cf4", "#e8590c", "#2b8a3e", "#1971c2", "#c2255c", "#5f3dc4")
MODEL_KINDS = ("tfidf", "probe", "full", "lora")


def model_label(kind: str) -> str:
    return t(f"classifier.model.{kind}")


def class_label(name: str) -> str:
    """A class name in the page's language: the tweets' classes (negative / neutral / positive) are
    translated; an upload's own labels are data and stay as written."""
    key = f"classifier.class.{name}"
    return t(key) if key in strings("en") else name


def class_labels(names) -> list[str]:
    return [class_label(n) for n in names]


def balance_figure(counts: dict[str, int]) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=class_labels(counts),
            y=list(counts.values()),
            text=list(counts.values()),
            marker_color=COLORS[: len(counts)] if len(counts) <= len(COLORS) else COLORS[0],
        )
    )
    fig.update_layout(
        title=t("classifier.data.balance"),
        height=300,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis_title=t("classifier.data.examples"),
    )
    return fig


def length_figure(edges: list[int], counts: list[int]) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=edges, y=counts, marker_color=COLORS[3], offset=0, width=(edges[1] - edges[0]) if len(edges) > 1 else 1
        )
    )
    fig.update_layout(
        title=t("classifier.data.lengths"),
        height=300,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title=t("classifier.data.chars"),
        yaxis_title=t("classifier.data.examples"),
        bargap=0.05,
    )
    return fig


def training_figure(history: list[dict]) -> go.Figure:
    """Loss per step (left axis), batch accuracy and validation accuracy / macro-F1 (right axis, 0..1)."""
    steps = [h for h in history if h.get("kind") == "step"]
    evals = [h for h in history if h.get("kind") == "eval"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=[s["step"] for s in steps],
            y=[s["loss"] for s in steps],
            mode="lines",
            name=t("classifier.chart.loss"),
            line={"color": COLORS[0]},
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=[e["step"] for e in evals],
            y=[e["val_loss"] for e in evals],
            mode="lines+markers",
            name=t("classifier.chart.val_loss"),
            line={"color": COLORS[0], "dash": "dash"},
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=[s["step"] for s in steps],
            y=[s["accuracy"] for s in steps],
            mode="lines",
            name=t("classifier.chart.batch_acc"),
            line={"color": "#adb5bd", "width": 1},
        ),
        secondary_y=True,
    )
    fig.add_trace(
        go.Scatter(
            x=[e["step"] for e in evals],
            y=[e["val_accuracy"] for e in evals],
            mode="lines+markers",
            name=t("classifier.chart.val_acc"),
            line={"color": COLORS[2]},
        ),
        secondary_y=True,
    )
    fig.add_trace(
        go.Scatter(
            x=[e["step"] for e in evals],
            y=[e["val_macro_f1"] for e in evals],
            mode="lines+markers",
            name=t("classifier.chart.val_f1"),
            line={"color": COLORS[1]},
            marker={"size": 9, "symbol": "diamond"},
        ),
        secondary_y=True,
    )
    fig.update_layout(
        title=t("classifier.chart.title"),
        height=380,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.2},
        xaxis_title=t("classifier.chart.step"),
    )
    fig.update_yaxes(title_text=t("classifier.chart.loss"), secondary_y=False)
    # Round ticks of its own: the secondary axis otherwise takes the loss axis's gridlines ("sync").
    fig.update_yaxes(
        title_text=t("classifier.chart.share"),
        range=[0, 1],
        tickmode="linear",
        tick0=0,
        dtick=0.2,
        secondary_y=True,
        showgrid=False,
    )
    return fig


def confusion_figure(matrix: np.ndarray, labels, normalised: bool, model: str) -> go.Figure:
    z = matrix
    text = [[f"{v:.0%}" if normalised else f"{int(v)}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=class_labels(labels),
            y=class_labels(labels),
            text=text,
            texttemplate="%{text}",
            colorscale="Purples",
            showscale=False,
            hovertemplate=t("classifier.cm.hover") + "<extra></extra>",
        )
    )
    fig.update_layout(
        title=t("classifier.cm.title", model=model),
        height=360,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title=t("classifier.cm.predicted"),
        yaxis_title=t("classifier.cm.true"),
        yaxis={"autorange": "reversed"},
    )
    return fig


def calibration_figure(bins, model: str) -> go.Figure:
    filled = [b for b in bins if b.count]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name=t("classifier.cal.perfect"),
            line={"color": "#adb5bd", "dash": "dot"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[b.confidence for b in filled],
            y=[b.accuracy for b in filled],
            mode="lines+markers",
            name=model,
            line={"color": COLORS[0]},
            customdata=[b.count for b in filled],
            marker={"size": [6 + 14 * (b.count / max(x.count for x in filled)) ** 0.5 for b in filled]},
            hovertemplate=t("classifier.cal.hover") + "<extra></extra>",
        )
    )
    fig.update_layout(
        title=t("classifier.cal.title", model=model),
        height=360,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"title": t("classifier.cal.confidence"), "range": [0, 1]},
        yaxis={"title": t("classifier.cal.accuracy"), "range": [0, 1]},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def compare_table(reports: dict, runs: dict) -> pd.DataFrame:
    rows = []
    for kind in MODEL_KINDS:
        if kind not in reports:
            continue
        r, run = reports[kind], runs[kind]
        rows.append(
            {
                t("classifier.col.model"): model_label(kind),
                t("classifier.col.accuracy"): round(r.accuracy, 4),
                t("classifier.col.macro_f1"): round(r.macro_f1, 4),
                t("classifier.col.val_f1"): round(run.val_macro_f1, 4) if run.val_macro_f1 is not None else None,
                "ECE": round(r.ece, 4),
                t("classifier.col.seconds"): round(run.seconds, 1),
                t("classifier.col.stop"): stop_label(run.stop_reason),
            }
        )
    return pd.DataFrame(rows)


def compare_columns() -> dict:
    """Widths of the comparison's text columns: a stopped or failed run's "Ended" cell was cut off."""
    return {
        t("classifier.col.model"): st.column_config.TextColumn(width="medium"),
        t("classifier.col.stop"): st.column_config.TextColumn(width="large"),
    }


def misclassified_columns() -> dict:
    return {
        t("classifier.col.text"): st.column_config.TextColumn(width="large"),
        t("classifier.col.probs"): st.column_config.TextColumn(width="medium"),
    }


def stop_label(reason: str) -> str:
    """How a run ended: finished, stopped, early stopping, or the failure's own message."""
    return t(f"classifier.stop.{reason}") if reason in ("done", "stopped", "early_stopping") else reason


def per_class_table(r) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                t("classifier.col.class"): class_label(c.label),
                t("classifier.col.precision"): round(c.precision, 4),
                t("classifier.col.recall"): round(c.recall, 4),
                "F1": round(c.f1, 4),
                t("classifier.col.support"): c.support,
            }
            for c in r.per_class
        ]
    )


def misclassified_table(texts, y_true, probs: np.ndarray, labels, limit: int = 200) -> pd.DataFrame:
    """Wrong predictions, the most confident first, with every class's probability."""
    pred = probs.argmax(1)
    labels = class_labels(labels)
    wrong = [i for i in np.argsort(-probs.max(1), kind="stable") if pred[i] != y_true[i]][:limit]
    rows = []
    for i in wrong:
        rows.append(
            {
                t("classifier.col.text"): texts[i],
                t("classifier.col.true"): labels[y_true[i]],
                t("classifier.col.predicted"): labels[pred[i]],
                t("classifier.col.confidence"): round(float(probs[i, pred[i]]), 3),
                t("classifier.col.p_true"): round(float(probs[i, y_true[i]]), 3),
                t("classifier.col.probs"): " · ".join(f"{n} {p:.3f}" for n, p in zip(labels, probs[i])),
            }
        )
    return pd.DataFrame(rows)


def attribution_html(tokens, scores, skip=("[CLS]", "[SEP]", "[PAD]")) -> str:
    """Tokens on a red (against) / green (for) background, the strength scaled to the largest score."""
    kept = [(tok, s) for tok, s in zip(tokens, scores) if tok not in skip]
    top = max((abs(s) for _, s in kept), default=0.0) or 1.0
    chips = []
    for tok, s in kept:
        alpha = min(1.0, abs(s) / top)
        rgb = "43,138,62" if s >= 0 else "201,42,42"
        chips.append(
            f'<span title="{s:+.4f}" style="background:rgba({rgb},{alpha:.2f});border-radius:4px;'
            f'padding:1px 4px;margin:1px;display:inline-block;font-family:monospace">{html.escape(tok)}</span>'
        )
    return "".join(chips)
