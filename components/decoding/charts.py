"""The decoding page's pictures: probability-coloured tokens, a step's distribution, the beam tree."""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go

from components.i18n import t


def _color(prob: float) -> str:
    # Red (unlikely) through yellow to green (likely): how sure the model was of its pick.
    if math.isnan(prob):  # a remote server sent no probability
        return "hsl(0, 0%, 90%)"
    hue = int(120 * max(0.0, min(1.0, prob)))
    return f"hsl({hue}, 75%, 85%)"


def probability_chips(steps, show_alternatives: int = 5) -> str:
    """HTML chips, one per generated token; hover lists the most likely alternatives."""
    chips = []
    for s in steps:
        alternatives = "\n".join(f"{a.text!r}: {a.prob:.3f}" for a in s.top[:show_alternatives])
        title = html.escape(
            f"#{s.index} · p={s.prob:.3f} (after filters {s.filtered_prob:.3f})\n{alternatives}"
            if not math.isnan(s.filtered_prob)
            else f"#{s.index} · p=?"
        )
        label = html.escape(s.text.replace("\n", "↵")) or "&nbsp;"
        chips.append(
            f'<span title="{title}" style="background:{_color(s.prob)};border-radius:3px;'
            f'padding:0 2px;margin:0 1px;white-space:pre-wrap;font-size:0.92em">{label}</span>'
        )
    return f'<div style="line-height:1.9">{"".join(chips)}</div>'


def distribution_figure(dist, title: str) -> go.Figure:
    """Top tokens of one step: the model's raw probability next to what filtering left."""
    names = [repr(a.text) for a in dist.raw]
    fig = go.Figure(
        [
            go.Bar(name=t("dec.fig.raw"), x=names, y=[a.prob for a in dist.raw], marker_color="#b8b0f0"),
            go.Bar(name=t("dec.fig.filtered"), x=names, y=[a.filtered_prob for a in dist.raw], marker_color="#6c4cf4"),
        ]
    )
    # The legend sits below the title, above the plot area, so no bar can run into it.
    fig.update_layout(
        barmode="group",
        height=340,
        title=dict(text=title, y=0.97),
        margin=dict(l=10, r=10, t=80, b=10),
        yaxis_title=t("dec.fig.probability"),
        legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
    )
    fig.update_yaxes(range=[0, min(1.0, max([a.prob for a in dist.raw] + [0.01]) * 1.1)])
    return fig


BEAM_ROW_PX = 26  # the beam tree's height per step: one row of labels each


def _on_best_path(beam, best_ids: list[int]) -> bool:
    return list(beam.ids) == list(best_ids[: len(beam.ids)])


def beam_tree_figure(result, decode) -> go.Figure:
    """Every step's kept beams (purple), finished hypotheses (green) and dropped candidates (grey).

    The tree grows downwards, one row per step, so it gets taller (never more crowded) with more
    tokens. Only the tokens of the best hypothesis are written on it, right of their node, one per
    row, so labels cannot overlap; every other node tells its token and text on hover.
    """
    fig = go.Figure()
    kept_x, kept_y, kept_hover = [], [], []
    path_x, path_y, path_text = [], [], []
    edges_x, edges_y = [], []
    other = {"finished": ([], [], [], "#2e9d57"), "dropped": ([], [], [], "#bbbbbb")}
    width = max([len(step.kept) for step in result.steps] + [1])
    for step_no, step in enumerate(result.steps, start=1):
        for rank, beam in enumerate(step.kept):
            hover = f"{t('dec.fig.step')} {step_no} · {beam.score:.2f}<br>{html.escape(decode(beam.ids))}"
            if _on_best_path(beam, result.best_ids):
                path_x.append(rank)
                path_y.append(step_no)
                path_text.append(html.escape(decode([beam.token_id]).replace("\n", "↵")[:12]))
            kept_x.append(rank)
            kept_y.append(step_no)
            kept_hover.append(hover)
            if beam.parent >= 0:
                edges_x += [beam.parent, rank, None]
                edges_y += [step_no - 1, step_no, None]
        for kind in ("finished", "dropped"):
            xs, ys, hover, _ = other[kind]
            for j, beam in enumerate(getattr(step, kind)):
                xs.append(width + 0.4 + j * 0.35 if kind == "dropped" else -0.6 - j * 0.3)
                ys.append(step_no + 0.3)
                score = beam.normalized if beam.normalized is not None else beam.score
                hover.append(f"{t('dec.fig.' + kind)} · {score:.2f}<br>{html.escape(decode(beam.ids))}")
    fig.add_trace(
        go.Scatter(x=edges_x, y=edges_y, mode="lines", line=dict(color="#c9c2f5"), hoverinfo="skip", showlegend=False)
    )
    fig.add_trace(
        go.Scatter(
            x=kept_x,
            y=kept_y,
            mode="markers",
            marker=dict(color="#6c4cf4", size=8),
            hovertext=kept_hover,
            hoverinfo="text",
            name=t("dec.fig.kept"),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=path_x,
            y=path_y,
            mode="markers+text",
            text=path_text,
            textposition="middle right",
            cliponaxis=False,  # a label near the edge is drawn whole
            marker=dict(color="#f4a300", size=11, line=dict(color="#6c4cf4", width=1)),
            textfont=dict(size=12),
            hoverinfo="skip",
            name=t("dec.fig.best"),
        )
    )
    left = -0.9 - 0.3 * max([len(step.finished) for step in result.steps] + [0])
    right = width + 0.7 + 0.35 * max([len(step.dropped) for step in result.steps] + [0])
    for kind, (xs, ys, hover, color) in other.items():
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="markers",
                    marker=dict(color=color, size=6, symbol="x"),
                    hovertext=hover,
                    hoverinfo="text",
                    name=t("dec.fig." + kind),
                )
            )
    steps = len(result.steps)
    fig.update_layout(
        height=BEAM_ROW_PX * (steps + 1) + 120,
        margin=dict(l=10, r=10, t=60, b=10),
        yaxis_title=t("dec.fig.step"),
        legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom"),
    )
    # Step 1 at the top; the prompt's row (0) is left free above it.
    fig.update_yaxes(range=[steps + 0.7, 0.3], dtick=1 if steps <= 40 else 5, showgrid=False)
    fig.update_xaxes(visible=False, range=[left, right])
    return fig
