"""Attention visualizer: what every head attends to, and the same numbers recomputed by hand."""

import io
from functools import partial

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from backends import attention as att
from components import url_state
from components.attention.charts import (
    heatmap_figure,
    heatmap_png,
    layer_head_figure,
    lines_figure,
    model_view_figure,
    thumbnails,
)
from components.attention.teaching import by_hand, positions
from components.experiments import experiments_panel
from components.guard import queue_status
from components.i18n import t
from components.model_picker import language_default, load_or_explain, model_picker
from components.option_labels import follow_language
from components.token_chips import token_chips

P = "attention."
DEFAULT_TEXT = "The cat sat on the mat because it was tired."
DEFAULT_PAIR = "Where did the cat sit?"
ANALYSIS = P + "analysis"

st.title(t("page.attention.title"))
st.markdown(t("attention.intro"))

# A teacher's link reopens the same view: model (the picker), text, length limit, layer and head.
url_state.bind(P + "max_tokens", "max_tokens", default=512, parse=int, valid=lambda v: 8 <= v <= 1024)
# In Chinese the default is the multilingual Gemma 3 270M on a Chinese sentence (MiniLM is English-only).
DEFAULT_MODEL = language_default("all-minilm-l6-v2", "gemma-3-270m")
url_state.bind(
    P + "text", "text", default=t("attention.text_default") if DEFAULT_MODEL != "all-minilm-l6-v2" else DEFAULT_TEXT
)
url_state.bind(P + "layer", "layer", default=0, parse=int, valid=lambda v: v >= 0)
url_state.bind(P + "head", "head", default=0, parse=int, valid=lambda v: v >= 0)

left, right = st.columns([1, 2])
with left:
    name = model_picker("attention", kinds=("embedding", "encoder", "causal-lm"), default=DEFAULT_MODEL)
    max_tokens = st.number_input(
        t("attention.max_tokens"),
        8,
        1024,
        step=8,
        key=P + "max_tokens",
        help=t("attention.max_tokens_help"),
        persist_state="session",
    )
with right:  # before the model loads: the learner can write while it does
    text = st.text_area(t("attention.text"), key=P + "text", height=90, persist_state="session")
loaded = load_or_explain(name, variant="eager") if name else None
if loaded is None:
    st.info(t("attention.pick_model"))
    st.stop()
decoder = att.is_decoder(loaded)

with right:
    pair = None
    if not decoder:
        use_pair = st.toggle(t("attention.use_pair"), key=P + "use_pair", persist_state="session")
        if use_pair:
            pair = st.text_input(t("attention.pair"), DEFAULT_PAIR, key=P + "pair", persist_state="session")


def analysis(loaded, text, pair, max_tokens) -> dict:
    """One forward pass per (model, input), kept for this session only, with what is derived from it."""
    signature = (loaded.key, text, pair, int(max_tokens))
    cached = st.session_state.get(ANALYSIS)
    if cached is not None and cached["signature"] == signature:
        return cached
    st.session_state.pop(ANALYSIS, None)  # free the previous input's maps before computing new ones
    with st.spinner(t("attention.computing")), queue_status():
        forward = att.forward_pass(loaded, text, pair, int(max_tokens), hidden_states=True)
        result = att.attention_from_forward(loaded, forward)
    st.session_state[ANALYSIS] = {"signature": signature, "forward": forward, "result": result, "derived": {}}
    return st.session_state[ANALYSIS]


def derived(name: str, compute):
    """Per-input results (head stats, rollout...): computed on first use, not on every click."""
    store = st.session_state[ANALYSIS]["derived"]
    if name not in store:
        store[name] = compute()
    return store[name]


try:
    current = analysis(loaded, text, pair, max_tokens)
except ValueError as exc:
    st.warning(str(exc))
    st.stop()
forward, result = current["forward"], current["result"]

n_layers, n_heads, seq = result.n_layers, result.n_heads, len(result.tokens)
if result.truncated:
    st.warning(t("attention.truncated", n=result.n_input_tokens, kept=seq))
st.caption(
    t(
        "attention.summary",
        tokens=seq,
        layers=n_layers,
        heads=n_heads,
        kind=t("attention.decoder") if decoder else t("attention.encoder"),
    )
)
token_chips(result.tokens, result.token_ids, result.special_mask, result.segment_ids)

# Layer and head are shared by every view; clicks in the model view and the head table set them.
for key, top in ((P + "layer", n_layers - 1), (P + "head", n_heads - 1)):
    if st.session_state.get(key, 0) > top:
        st.session_state[key] = top


def select_head(layer: int, head: int) -> None:
    st.session_state[P + "layer"] = int(layer)
    st.session_state[P + "head"] = int(head)
    st.session_state[P + "tab"] = t("attention.tab.head")  # show the head that was picked


def on_model_view_click():
    points = st.session_state[P + "model_view"].selection.points
    if points and "customdata" in points[0]:
        select_head(*points[0]["customdata"][:2])


def on_table_select():
    rows = st.session_state[P + "head_table"].selection.rows
    if rows:
        select_head(*divmod(rows[0], n_heads))


c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
layer = c1.slider(t("attention.layer"), 0, n_layers - 1, key=P + "layer", persist_state="session")
head = c2.selectbox(t("attention.head"), list(range(n_heads)), key=P + "head", persist_state="session")
hide_special = c3.toggle(
    t("attention.hide_special"), key=P + "hide_special", help=t("attention.hide_special_help"), persist_state="session"
)
show_mask = decoder and c4.toggle(
    t("attention.show_mask"),
    value=True,
    key=P + "show_mask",
    help=t("attention.show_mask_help"),
    persist_state="session",
)

matrix = result.attentions[layer, head]
tokens = result.tokens
kept = np.arange(seq)
if hide_special and result.special_mask.any():
    matrix, kept = att.drop_special(matrix, result.special_mask)
    tokens = [result.tokens[i] for i in kept]
masked = None
if decoder and show_mask:
    masked = np.triu(np.ones((len(kept), len(kept)), dtype=bool), k=1)

# Only the open tab runs (on_change="rerun"): a 512-token decoder page stays interactive.
tabs = st.tabs(
    [
        t("attention.tab.head"),
        t("attention.tab.model"),
        t("attention.tab.summary"),
        t("attention.tab.rollout"),
        t("attention.tab.hand"),
        t("attention.tab.positions"),
        t("attention.tab.export"),
    ],
    key=P + "tab",
    on_change="rerun",
)
title = t("attention.head_title", layer=layer, head=head)
AXES = dict(x_title=t("attention.axis.key"), y_title=t("attention.axis.query"), value_name=t("attention.axis.weight"))
LAYER_HEAD = dict(head_title=t("attention.head"), layer_title=t("attention.layer"))


def head_view():
    head_fig = heatmap_figure(matrix, tokens, title, masked=masked, **AXES)
    st.plotly_chart(head_fig, key=P + "heatmap", config={"toImageButtonOptions": {"filename": "attention"}})
    st.subheader(t("attention.lines"))
    focus_options = [-1, *range(len(tokens))]
    focus = st.selectbox(
        t("attention.focus"),
        focus_options,
        key=follow_language(P + "focus"),
        format_func=lambda i: t("attention.all_tokens") if i < 0 else f"{i}: {tokens[i]}",
        persist_state="session",
    )
    lines, group = lines_figure(matrix, tokens, focus=None if focus < 0 else focus)
    if group > 1:
        st.info(t("attention.grouped", g=group, n=len(tokens)))
    st.plotly_chart(lines, key=P + "lines")


def model_view():
    st.caption(t("attention.model_help"))
    thumbs = derived("thumbs", lambda: thumbnails(result.attentions))
    st.plotly_chart(
        model_view_figure(thumbs, selected=(layer, head), **LAYER_HEAD),
        key=P + "model_view",
        on_select=on_model_view_click,
        selection_mode="points",
    )


HEAD_LABEL_KEYS = dict(zip(att.LABELS, ("same", "previous", "first", "broad", "mixed")))


def head_label(label: str) -> str:
    return t("attention.label." + HEAD_LABEL_KEYS[label]) if label in HEAD_LABEL_KEYS else label


def head_summary():
    stats = derived("stats", lambda: att.head_stats(result, special_mask=result.special_mask))
    # Head labels come from the backend in English; shown in the UI language.
    shown = [[head_label(label) for label in row] for row in stats.labels]
    counts = {head_label(label): sum(row.count(label) for row in stats.labels) for label in att.LABELS}
    st.caption(" · ".join(f"**{label}**: {n}" for label, n in counts.items()))
    s1, s2 = st.columns(2)
    s1.plotly_chart(layer_head_figure(stats.entropy, shown, t("attention.entropy"), **LAYER_HEAD), key=P + "entropy")
    s2.plotly_chart(
        layer_head_figure(stats.mean_distance, shown, t("attention.distance"), "Cividis", **LAYER_HEAD),
        key=P + "distance",
    )
    table = {
        t("attention.layer"): np.repeat(np.arange(n_layers), n_heads),
        t("attention.head"): np.tile(np.arange(n_heads), n_layers),
        t("attention.col.label"): [label for row in shown for label in row],
        t("attention.col.entropy"): stats.entropy.ravel().round(3),
        t("attention.col.distance"): stats.mean_distance.ravel().round(2),
        t("attention.col.previous"): stats.previous_token.ravel().round(3),
        t("attention.col.first"): stats.first_token.ravel().round(3),
        t("attention.col.same"): stats.same_token.ravel().round(3),
    }
    st.caption(t("attention.table_help"))
    st.dataframe(
        table,
        hide_index=True,
        key=P + "head_table",
        on_select=on_table_select,
        selection_mode="single-row",
        height=320,
    )


def rollout_view():
    roll = derived("rollout", lambda: att.rollout(result))
    default_target = seq - 1 if decoder else 0
    target = st.selectbox(
        t("attention.rollout_target"),
        list(range(seq)),
        index=default_target,
        key=P + "rollout_target",
        format_func=lambda i: f"{i}: {result.tokens[i]}",
        persist_state="session",
    )
    st.caption(t("attention.rollout_help"))
    bars = go.Figure(
        go.Bar(
            x=[f"{i}:{tok}" for i, tok in enumerate(result.tokens)],
            y=roll[target],
            marker_color="#6c4cf4",
            hovertemplate="%{x}<br>%{y:.4f}<extra></extra>",
        )
    )
    bars.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10), yaxis_title=t("attention.share"))
    st.plotly_chart(bars, key=P + "rollout_bars")
    st.plotly_chart(
        heatmap_figure(
            roll,
            result.tokens,
            t("attention.rollout_all"),
            x_title=t("attention.axis.input"),
            y_title=t("attention.axis.output"),
            value_name=t("attention.share"),
        ),
        key=P + "rollout_map",
    )


def export():
    stem = f"attention-{result.model_key.replace('/', '_')}-L{layer}H{head}"

    def npz_bytes() -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            attentions=result.attentions,
            tokens=np.array(result.tokens),
            token_ids=np.array(result.token_ids),
            special_mask=result.special_mask,
        )
        return buffer.getvalue()

    e1, e2, e3 = st.columns(3)
    e1.download_button(
        t("attention.export_npz"), npz_bytes, file_name=f"{stem}.npz", mime="application/octet-stream", key=P + "npz"
    )
    e2.download_button(
        t("attention.export_html"),
        lambda: heatmap_figure(matrix, tokens, title, masked=masked).to_html(include_plotlyjs=True),
        file_name=f"{stem}.html",
        mime="text/html",
        key=P + "html",
    )
    e3.download_button(
        t("attention.export_png"),
        lambda: heatmap_png(matrix, tokens, title),
        file_name=f"{stem}.png",
        mime="image/png",
        key=P + "png",
    )
    st.caption(t("attention.export_help", shape=" × ".join(map(str, result.attentions.shape))))


views = (
    head_view,
    model_view,
    head_summary,
    rollout_view,
    partial(by_hand, loaded, forward, text, pair, max_tokens, layer, head, show_mask, AXES),
    partial(positions, loaded),
    export,
)
for tab, render in zip(tabs, views):
    if tab.open:
        with tab:
            render()

experiments_panel("attention", loaded)
