"""Pictures for the decoding page: probability-coloured tokens, a step's distribution, the beam tree."""
from __future__ import annotations

import html

import plotly.graph_objects as go


def _color(prob: float) -> str:
    # Red (unlikely) through yellow to green (likely): how sure the model was of its pick.
    hue = int(120 * max(0.0, min(1.0, prob)))
    return f"hsl({hue}, 75%, 85%)"


def probability_chips(steps, show_alternatives: int = 5) -> str:
    """HTML chips, one per generated token; hover lists the most likely alternatives."""
    chips = []
    for s in steps:
        alternatives = "\n".join(f"{a.text!r}: {a.prob:.3f}" for a in s.top[:show_alternatives])
        title = html.escape(f"#{s.index} · p={s.prob:.3f} (after filters {s.filtered_prob:.3f})\n{alternatives}")
        label = html.escape(s.text.replace("\n", "↵")) or "&nbsp;"
        chips.append(f'<span title="{title}" style="background:{_color(s.prob)};border-radius:3px;'
                     f'padding:0 2px;margin:0 1px;white-space:pre-wrap;font-size:0.92em">{label}</span>')
    return f'<div style="line-height:1.9">{"".join(chips)}</div>'


def distribution_figure(dist, title: str) -> go.Figure:
    """Top tokens of one step: the model's raw probability next to what filtering left."""
    names = [repr(a.text) for a in dist.raw]
    fig = go.Figure([
        go.Bar(name="raw softmax", x=names, y=[a.prob for a in dist.raw], marker_color="#b8b0f0"),
        go.Bar(name="after filters", x=names, y=[a.filtered_prob for a in dist.raw], marker_color="#6c4cf4"),
    ])
    fig.update_layout(barmode="group", height=300, title=title, margin=dict(l=10, r=10, t=40, b=10),
                      yaxis_title="probability", legend=dict(orientation="h", y=1.1))
    return fig


def beam_tree_figure(result, decode) -> go.Figure:
    """Every step's kept beams (purple), finished hypotheses (green) and dropped candidates (grey)."""
    fig = go.Figure()
    kept_x, kept_y, kept_text, kept_hover = [], [], [], []
    edges_x, edges_y = [], []
    other = {"finished": ([], [], [], "#2e9d57"), "dropped": ([], [], [], "#bbbbbb")}
    for step_no, step in enumerate(result.steps, start=1):
        for rank, beam in enumerate(step.kept):
            kept_x.append(step_no)
            kept_y.append(-rank)
            kept_text.append(decode([beam.token_id]))
            kept_hover.append(f"step {step_no} · score {beam.score:.2f}<br>{html.escape(decode(beam.ids))}")
            if beam.parent >= 0:
                edges_x += [step_no - 1, step_no, None]
                edges_y += [-beam.parent, -rank, None]
        for kind in ("finished", "dropped"):
            xs, ys, hover, _ = other[kind]
            for j, beam in enumerate(getattr(step, kind)):
                xs.append(step_no + 0.25)
                ys.append(-len(step.kept) - j * 0.6 if kind == "dropped" else -rank - 0.5 - j * 0.3)
                score = beam.normalized if beam.normalized is not None else beam.score
                hover.append(f"{kind} · {score:.2f}<br>{html.escape(decode(beam.ids))}")
    fig.add_trace(go.Scatter(x=edges_x, y=edges_y, mode="lines", line=dict(color="#c9c2f5"), hoverinfo="skip",
                             showlegend=False))
    fig.add_trace(go.Scatter(x=kept_x, y=kept_y, mode="markers+text", text=kept_text, textposition="top center",
                             marker=dict(color="#6c4cf4", size=9), hovertext=kept_hover, hoverinfo="text",
                             name="kept"))
    for kind, (xs, ys, hover, color) in other.items():
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", marker=dict(color=color, size=6, symbol="x"),
                                     hovertext=hover, hoverinfo="text", name=kind))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="step",
                      legend=dict(orientation="h", y=1.08))
    fig.update_yaxes(visible=False)
    return fig
