"""The attention page's teaching tabs: one head recomputed by hand, and positional encodings (sinusoidal, RoPE)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from backends import attention as att
from components.attention.charts import DIVERGING, heatmap_figure, matrix_figure
from components.i18n import t
from components.show_code import show_code

P = "attention."
MATCH_TOLERANCE = 1e-4  # the parity tests' bound (tests/backends/test_attention.py)


def match_badge(max_abs_diff: float) -> None:
    """A plain check (not a metric delta, whose arrow reads as "went up"): does the hand result match?"""
    if max_abs_diff < MATCH_TOLERANCE:
        st.badge(t("attention.match"), icon=":material/check:", color="green")
    else:
        st.badge(t("attention.mismatch"), icon=":material/close:", color="red")


def by_hand(loaded, forward, text, pair, max_tokens, layer: int, head: int, show_mask: bool, axes: dict):
    """Q, K, the scaled scores and the softmax of one head, written out, beside the library's weights."""
    decoder = att.is_decoder(loaded)
    st.markdown(t("attention.hand_intro"))
    st.latex(r"A = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right)")
    try:
        manual = att.manual_attention(loaded, text, layer, head, pair, int(max_tokens), forward=forward)
    except NotImplementedError as exc:
        st.info(str(exc))
    else:
        st.metric(t("attention.max_diff"), f"{manual.max_abs_diff:.2e}")
        match_badge(manual.max_abs_diff)
        if decoder:
            st.caption(t("attention.rope_note", kv=manual.kv_head))
        st.caption(t("attention.hand_colours"))
        h1, h2 = st.columns(2)
        h1.plotly_chart(
            matrix_figure(manual.q, manual.tokens, "Q", x_title=t("attention.axis.dimension")), key=P + "q"
        )
        h2.plotly_chart(
            matrix_figure(manual.k, manual.tokens, "K", x_title=t("attention.axis.dimension")), key=P + "k"
        )
        h3, h4 = st.columns(2)
        # Raw scores are signed: the same diverging scale as Q and K, centred on 0 (white).
        h3.plotly_chart(
            heatmap_figure(
                manual.scores,
                manual.tokens,
                "QKᵀ/√d",
                colorscale=DIVERGING,
                zmid=0.0,
                masked=~manual.mask if show_mask else None,
                x_title=axes["x_title"],
                y_title=axes["y_title"],
                value_name=t("attention.axis.score"),
            ),
            key=P + "scores",
        )
        h4.plotly_chart(heatmap_figure(manual.probs, manual.tokens, t("attention.softmax"), **axes), key=P + "probs")
        show_code(
            att.manual_attention,
            att.bert_qk,
            att.llama_qk,
            att.split_heads,
            att.rope_cos_sin,
            att.apply_rope,
            att.scaled_scores,
            att.softmax,
        )


def positions(loaded):
    """Sinusoidal encodings, and RoPE's rotation of one pair of dimensions with this model's theta."""
    st.markdown(t("attention.pos_intro"))
    p1, p2 = st.columns(2)
    n_pos = p1.slider(t("attention.positions"), 8, 512, 128, key=P + "pe_positions", persist_state="session")
    d_model = p2.slider(t("attention.d_model"), 16, 512, 128, step=16, key=P + "pe_dim", persist_state="session")
    pe = att.sinusoidal_encoding(n_pos, d_model)
    pe_fig = go.Figure(
        go.Heatmap(
            z=pe,
            colorscale=DIVERGING,
            zmid=0,
            hovertemplate="position %{y}<br>dimension %{x}<br>%{z:.3f}<extra></extra>",
        )
    )
    pe_fig.update_layout(
        height=360,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis_title=t("attention.axis.dimension"),
        yaxis_title=t("attention.axis.position"),
    )
    st.plotly_chart(pe_fig, key=P + "sinusoidal")
    st.markdown(t("attention.rope_intro"))
    cfg = loaded.model.config
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    theta = float((getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", 10000.0))
    pair_index = st.slider(
        t("attention.rope_pair"), 0, head_dim // 2 - 1, 0, key=P + "rope_pair", persist_state="session"
    )
    positions = np.arange(0, 33)
    points = att.rope_rotation_demo(positions, head_dim, theta, pair_index)
    rope_fig = go.Figure()
    for pos, (x, y) in zip(positions, points):
        rope_fig.add_trace(
            go.Scatter(
                x=[0, x],
                y=[0, y],
                mode="lines+markers",
                showlegend=False,
                line=dict(color=f"hsl({int(300 * pos / len(positions))},70%,50%)"),
                hovertemplate=f"position {pos}<extra></extra>",
            )
        )
    rope_fig.update_layout(
        height=380,
        width=380,
        margin=dict(l=10, r=10, t=30, b=10),
        title=t("attention.rope_title", theta=f"{theta:g}", d=head_dim, i=pair_index),
    )
    rope_fig.update_yaxes(scaleanchor="x", range=[-1.1, 1.1])
    rope_fig.update_xaxes(range=[-1.1, 1.1])
    st.plotly_chart(rope_fig, key=P + "rope", width="content")
