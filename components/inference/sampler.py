"""The "be the sampler" tab: the model shows its next-token distribution, the learner picks each token,
can rewind, and compares the perplexity of their text with greedy decoding's continuation of the same
length. Session state only (keys under inference.sampler.)."""

from __future__ import annotations

import html

import plotly.graph_objects as go
import streamlit as st

from backends import inference as inf
from backends.decoding import PromptError, encode_prompt, eos_ids
from components.guard import queue_status
from components.i18n import t

P = "inference.sampler."
TOP_N = 15
MAX_PICKS = 40
DEFAULT_PROMPT = "The best way to learn a new language is"


def visible(text: str) -> str:
    return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥") or "∅"


def picks() -> list[dict]:
    return st.session_state.setdefault(P + "picks", [])


def pick(token: int, prob: float, rank: int) -> None:
    picks().append({"id": token, "prob": prob, "rank": rank})
    st.session_state.pop(P + "compare", None)


def rewind_to(n: int) -> None:
    del picks()[n:]
    st.session_state.pop(P + "compare", None)


def distribution(loaded, ids: list[int]):
    """The top tokens after `ids`, remembered for the last ids of this session (reruns cost no forward pass)."""
    saved = st.session_state.get(P + "dist")
    if saved is not None and saved[0] == ids:
        return saved[1]
    with queue_status():
        bars = inf.next_token_bars(loaded, ids, TOP_N)
    st.session_state[P + "dist"] = (list(ids), bars)
    return bars


def bars_chart(bars) -> None:
    labels = [f"{i + 1}. {visible(b.text)}" for i, b in enumerate(bars)]
    fig = go.Figure(
        go.Bar(
            x=[b.prob for b in bars][::-1],
            y=labels[::-1],
            orientation="h",
            marker_color="#6c4cf4",
            text=[f"{b.prob:.1%}" for b in bars][::-1],
            textposition="outside",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_layout(
        height=60 + 24 * len(bars),
        margin={"t": 10, "b": 30, "l": 10, "r": 40},
        xaxis={"tickformat": ".0%", "title": t(P + "prob")},
    )
    st.plotly_chart(fig, key=P + "bars")


def text_so_far(tokenizer, chosen: list[dict]) -> None:
    """The learner's tokens as chips: probability and rank when picked."""
    chips = []
    for i, p in enumerate(chosen):
        piece = html.escape(visible(tokenizer.decode([p["id"]])))
        title = html.escape(t(P + "chip", n=i + 1, p=f"{p['prob']:.1%}", rank=p["rank"]))
        shade = "#d3f9d8" if p["rank"] == 1 else "#fff3bf" if p["rank"] <= 5 else "#ffe3e3"
        chips.append(
            f'<span title="{title}" style="background:{shade};border-radius:4px;padding:1px 4px;margin:1px;'
            f'display:inline-block;font-family:monospace">{piece}</span>'
        )
    st.markdown('<div style="line-height:1.9">' + "".join(chips) + "</div>", unsafe_allow_html=True)
    st.caption(t(P + "chip_legend"))


def pick_buttons(bars, ended: bool) -> None:
    cols = st.columns(5)
    for i, b in enumerate(bars):
        cols[i % 5].button(
            f"`{visible(b.text).replace('`', 'ˋ')}` · {b.prob:.0%}"
            if b.prob >= 0.01
            else f"`{visible(b.text).replace('`', 'ˋ')}` · {b.prob:.1%}",
            key=P + f"pick.{i}",
            on_click=pick,
            args=(b.token_id, b.prob, i + 1),
            disabled=ended,
            use_container_width=True,
        )


def rewind_controls(chosen: list[dict]) -> None:
    c = st.columns([1, 2, 1])
    n = len(chosen)
    undo = {"on_click": rewind_to, "args": (n - 1,), "disabled": not n, "icon": ":material/undo:"}
    c[0].button(t(P + "undo"), key=P + "undo", **undo)
    if n > 1:
        # keyed by the length: the options change with every pick, and an old choice may not exist any more
        to = c[1].select_slider(
            t(P + "rewind_to"), list(range(n)), n - 1, key=P + f"rewind_step.{n}", persist_state="session"
        )
        c[2].button(t(P + "rewind"), key=P + "rewind", on_click=rewind_to, args=(int(to),), icon=":material/history:")
    elif chosen:
        c[2].button(t(P + "clear"), key=P + "clear", on_click=rewind_to, args=(0,), icon=":material/delete:")


def comparison(loaded, prompt_ids: list[int], chosen: list[dict]) -> None:
    if st.button(t(P + "compare"), key=P + "compare_btn", disabled=not chosen, icon=":material/compare_arrows:"):
        with st.spinner(t(P + "comparing")), queue_status():
            st.session_state[P + "compare"] = inf.compare_with_greedy(loaded, prompt_ids, [p["id"] for p in chosen])
    got = st.session_state.get(P + "compare")
    if got is None or got.yours != [p["id"] for p in chosen]:
        return
    tok = loaded.tokenizer
    c = st.columns(2)
    with c[0]:
        st.metric(t(P + "ppl.yours"), f"{got.yours_ppl:.2f}")
        st.text(tok.decode(got.yours))
    with c[1]:
        st.metric(t(P + "ppl.greedy"), f"{got.greedy_ppl:.2f}")
        st.text(tok.decode(got.greedy))
    if got.greedy_ended:
        st.caption(t(P + "greedy_ended", n=len(got.greedy)))
    fig = go.Figure()
    fig.add_scatter(y=got.yours_logprobs, mode="lines+markers", name=t(P + "series.yours"), line={"color": "#e8590c"})
    greedy = t(P + "series.greedy")
    fig.add_scatter(y=got.greedy_logprobs, mode="lines+markers", name=greedy, line={"color": "#1971c2"})
    fig.update_layout(
        height=260,
        margin={"t": 20, "b": 40},
        xaxis_title=t(P + "logprob.x"),
        yaxis_title=t(P + "logprob.y"),
        legend={"orientation": "h", "y": -0.35},
    )
    st.plotly_chart(fig, key=P + "logprobs")
    st.caption(t(P + "ppl.note"))


def render() -> None:
    st.markdown(t(P + "intro"))
    c = st.columns([4, 1])
    text = c[0].text_input(t(P + "prompt"), DEFAULT_PROMPT, key=P + "prompt", persist_state="session")
    chat = c[1].toggle(t(P + "chat"), value=False, key=P + "chat", persist_state="session")
    with st.spinner(t(P + "loading")):
        loaded = inf.load_model()  # the shared cache's model (loaded once per process)
    try:
        prompt_ids = encode_prompt(loaded, text, chat=chat)
    except PromptError:
        st.warning(t(P + "empty"))
        return
    if st.session_state.get(P + "for") != (text, chat):  # a new prompt starts a new text
        st.session_state[P + "for"] = (text, chat)
        rewind_to(0)
    chosen = picks()
    ended = bool(chosen) and chosen[-1]["id"] in eos_ids(loaded)
    st.markdown(t(P + "so_far", n=len(chosen), max=MAX_PICKS))
    text_so_far(loaded.tokenizer, chosen)
    rewind_controls(chosen)
    if ended:
        st.info(t(P + "ended"))
    elif len(chosen) >= MAX_PICKS:
        st.info(t(P + "full", max=MAX_PICKS))
    else:
        bars = distribution(loaded, prompt_ids + [p["id"] for p in chosen])
        st.markdown(t(P + "next", n=TOP_N))
        bars_chart(bars)
        pick_buttons(bars, ended)
        st.caption(t(P + "bars_note", n=TOP_N, rest=f"{1 - sum(b.prob for b in bars):.1%}"))
    comparison(loaded, prompt_ids, chosen)
