"""Figures of the quantization page: size vs perplexity with the Pareto front, decode speed against
the memory-bandwidth bound, and the weight matrix views of the "how it works" tab."""

from __future__ import annotations

import re

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


WIDE = "\u3000-\u9fff\uff00-\uffef"  # CJK characters and full-width punctuation: two columns each
# a word, or one wide character; an opening bracket stays with what follows it
UNITS = re.compile(f"[（(“]*(?:[{WIDE}]|[^\\s{WIDE}]+)|\\s+")
NO_BREAK_BEFORE = "）)，。：；、"


def wrap(text: str, width: int = 22) -> str:
    """A long variant name on several lines (<br>) of about `width` columns, broken at spaces or between
    Chinese characters, so a point's label stays narrow."""
    lines, line, used, space = [], "", 0, False
    for unit in UNITS.findall(text):
        if unit.isspace():
            space = True
            continue
        size = sum(2 if re.match(f"[{WIDE}]", c) else 1 for c in unit)
        sep = " " if space and line else ""
        if line and used + len(sep) + size > width and unit not in NO_BREAK_BEFORE:
            lines.append(line)
            line, used = unit, size
        else:
            line, used = line + sep + unit, used + len(sep) + size
        space = False
    return "<br>".join([*lines, line])


def text_positions(xs: list[float]) -> list[str]:
    """Labels above their points, turned inwards at the ends of the x range (a label centred on the
    rightmost point ran past the plot's edge and was cut)."""
    if not xs:
        return []
    lo, hi = min(xs), max(xs)
    span = hi - lo
    if span == 0:
        return ["top center" for _ in xs]
    return ["top right" if x < lo + span / 3 else "top left" if x > hi - span / 3 else "top center" for x in xs]


def padded(values: list[float], low: float = 0.08, high: float = 0.2) -> list[float] | None:
    """An axis range around `values` with room for the labels drawn above the highest points."""
    if not values:
        return None
    lo, hi = min(values), max(values)
    span = (hi - lo) or abs(hi) * 0.1 or 1.0
    return [lo - low * span, hi + high * span]


def size_quality_figure(rows, overlays=(), name=_own_label) -> go.Figure:
    """rows: VariantResult of this run, named by `name(row)` (the page's language); overlays: (label,
    rows) of earlier runs, named by their own exported labels."""
    fig = go.Figure()
    points = [(r.disk_bytes / MB, r.perplexity, name(r)) for r in rows if r.perplexity and r.disk_bytes]
    fig.add_trace(
        go.Scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            text=[wrap(p[2]) for p in points],
            hovertext=[p[2] for p in points],
            mode="markers+text",
            textposition=text_positions([p[0] for p in points]),
            textfont={"size": 11},
            cliponaxis=False,
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
        pts = pts_of(earlier)
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
    every = points + [p for _, earlier in overlays for p in pts_of(earlier)]
    fig.update_layout(
        title=t("quantization.chart.size_ppl"),
        xaxis={"title": t("quantization.chart.size_axis"), "range": padded([p[0] for p in every], 0.1, 0.1)},
        yaxis={"title": t("quantization.chart.ppl_axis"), "range": padded([p[1] for p in every], 0.1, 0.3)},
        height=440,
        margin={"t": 60, "b": 40, "l": 60, "r": 30},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def pts_of(rows) -> list[tuple[float, float, str]]:
    """(MB on disk, perplexity, label) of an earlier run's rows that have both."""
    return [(r.disk_bytes / MB, r.perplexity, r.label) for r in rows if r.perplexity and r.disk_bytes]


def speed_figure(rows, overlays=(), name=_own_label) -> go.Figure:
    timed = [r for r in rows if r.decode_tps]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=[name(r) for r in timed],
            y=[r.decode_tps for r in timed],
            text=[f"{r.decode_tps:.1f}" for r in timed],
            textposition="outside",
            cliponaxis=False,
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
    speeds = [v for r in timed for v in (r.decode_tps, r.bound_tps, r.decode_tps_p90) if v]
    speeds += [r.decode_tps for _, earlier in overlays for r in earlier if r.decode_tps and r.key in names]
    fig.update_layout(
        title=t("quantization.chart.speed"),
        yaxis={
            "title": t("quantization.chart.tps_axis"),
            "type": "log",
            # log10 of the range, a third of a decade under the slowest and half a decade over the fastest:
            # room for the numbers above the bars
            "range": [np.log10(min(speeds)) - 0.3, np.log10(max(speeds)) + 0.5] if speeds else None,
        },
        # names on several lines, the margin grown to hold them (they were cut at the bottom)
        xaxis={
            "automargin": True,
            "tickangle": 0,
            "tickmode": "array",
            "tickvals": [name(r) for r in timed],
            "ticktext": [wrap(name(r), 14) for r in timed],
        },
        height=440,
        margin={"t": 60, "b": 40, "l": 60, "r": 30},
        legend={"orientation": "h", "y": -0.3},
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
