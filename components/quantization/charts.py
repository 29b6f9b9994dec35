"""Figures of the quantization page: size vs perplexity with the Pareto front, decode speed against
the memory-bandwidth bound, and the weight matrix views of the "how it works" tab."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from components.i18n import t

MB = 1e6


def pareto(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Points no other point beats on both size and perplexity, smallest first."""
    front, best = [], float("inf")
    for size, ppl, name in sorted(points):
        if ppl < best:
            front.append((size, ppl, name))
            best = ppl
    return front


def _own_label(r) -> str:
    return r.label


def size_quality_figure(rows, overlays=(), name=_own_label) -> go.Figure:
    """rows: VariantResult of this run, named by `name(row)` (the page's language); overlays: (label,
    rows) of earlier runs, named by their own exported labels."""
    fig = go.Figure()
    points = [(r.disk_bytes / MB, r.perplexity, name(r)) for r in rows if r.perplexity and r.disk_bytes]
    fig.add_trace(
        go.Scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            text=[p[2] for p in points],
            mode="markers+text",
            textposition="top center",
            name=t("quantization.chart.this_run"),
            marker={"size": 11},
        )
    )
    front = pareto(points)
    fig.add_trace(
        go.Scatter(
            x=[p[0] for p in front],
            y=[p[1] for p in front],
            mode="lines",
            name=t("quantization.chart.pareto"),
            line={"dash": "dot"},
        )
    )
    for label, earlier in overlays:
        pts = [(r.disk_bytes / MB, r.perplexity, r.label) for r in earlier if r.perplexity and r.disk_bytes]
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in pts],
                y=[p[1] for p in pts],
                text=[p[2] for p in pts],
                mode="markers",
                name=label,
                marker={"symbol": "diamond-open", "size": 10},
            )
        )
    fig.update_layout(
        title=t("quantization.chart.size_ppl"),
        xaxis_title=t("quantization.chart.size_axis"),
        yaxis_title=t("quantization.chart.ppl_axis"),
        height=420,
        margin={"t": 50, "b": 40},
    )
    return fig


def speed_figure(rows, overlays=(), name=_own_label) -> go.Figure:
    timed = [r for r in rows if r.decode_tps]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=[name(r) for r in timed],
            y=[r.decode_tps for r in timed],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [0 for _ in timed],
                "arrayminus": [r.decode_tps - (r.decode_tps_p90 or r.decode_tps) for r in timed],
            },
            name=t("quantization.chart.decode"),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[name(r) for r in timed],
            y=[r.bound_tps for r in timed],
            mode="markers",
            marker={"symbol": "line-ew-open", "size": 28, "line": {"width": 3}},
            name=t("quantization.chart.bound"),
        )
    )
    names = {r.key: name(r) for r in timed}  # an earlier run's variant sits over this run's bar
    for label, earlier in overlays:
        pts = [r for r in earlier if r.decode_tps and r.key in names]
        fig.add_trace(
            go.Scatter(
                x=[names[r.key] for r in pts],
                y=[r.decode_tps for r in pts],
                mode="markers",
                marker={"symbol": "diamond-open", "size": 10},
                name=label,
            )
        )
    fig.update_layout(
        title=t("quantization.chart.speed"),
        yaxis_title=t("quantization.chart.tps_axis"),
        yaxis_type="log",
        height=420,
        margin={"t": 50, "b": 40},
    )
    return fig


def histogram_figure(w: np.ndarray, absmax: float, std: float, sigmas: float) -> go.Figure:
    fig = go.Figure(go.Histogram(x=w, nbinsx=200, name=t("quantization.how.weights")))
    for x, name in (
        (absmax, "absmax"),
        (-absmax, "-absmax"),
        (sigmas * std, f"{sigmas:g}σ"),
        (-sigmas * std, f"-{sigmas:g}σ"),
    ):
        fig.add_vline(x=x, line_dash="dot", annotation_text=name)
    fig.update_layout(
        title=t("quantization.how.histogram"),
        yaxis_type="log",
        height=320,
        showlegend=False,
        margin={"t": 50, "b": 30},
    )
    return fig


def error_heatmaps(grids: dict[str, np.ndarray]) -> go.Figure:
    from plotly.subplots import make_subplots

    names = list(grids)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.04)
    top = max(float(g.max()) for g in grids.values())
    # One 0..max range set on every trace, Viridis: in Streamlit's frontend a shared coloraxis with Magma drew its
    # low end (the smallest errors) in a light pink, as if they were large.
    for i, name in enumerate(names):
        heat = go.Heatmap(z=grids[name], zmin=0, zmax=top, colorscale="Viridis", showscale=i == len(names) - 1)
        fig.add_trace(heat, row=1, col=i + 1)
    fig.update_layout(title=t("quantization.how.heatmap"), height=330, margin={"t": 70, "b": 20})
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    return fig
