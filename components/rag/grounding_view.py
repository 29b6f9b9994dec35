"""Grounding on an answer card: each sentence of the answer marked supported or unsupported by the
retrieved passages (backends.trust.ground: MiniLM cosine + word overlap), with the passage sentence
that supports it (or the closest one and what it lacks). Used by the RAG page's finished answer
cards and by the Trust page's grounding tab."""

from __future__ import annotations

import html

import streamlit as st

from backends import trust
from components.guard import queue_status
from components.i18n import t

G = "rag.grounding."
COLOURS = {"supported": "#d3f9d8", "unsupported": "#ffe3e3", "abstains": "#e9ecef", "no_claim": "#e9ecef"}
ICONS = {"supported": "✅", "unsupported": "⚠️", "abstains": "🤷", "no_claim": "·"}


def _span(text: str, label: str) -> str:
    """The model's (or the passage's) words as HTML, escaped, on the background of a label's colour:
    data, not UI text, so it stays in its own language whatever the page's language is."""
    words = html.escape(" ".join(text.split()))
    return f'<span style="background:{COLOURS[label]};padding:1px 3px;border-radius:3px">{words}</span>'


def marked_answer(supports) -> str:
    """The answer as HTML (st.markdown(..., unsafe_allow_html=True)), each sentence on its label's colour."""
    return " ".join(_span(s.text, s.label) for s in supports)


def counts_line(supports) -> str:
    claims = [s for s in supports if s.label in ("supported", "unsupported")]
    return t(G + "counts", supported=sum(s.supported for s in claims), claims=len(claims))


def sentence_rows(supports, sources: list[str]) -> None:
    """One row per sentence: the sentence and its label, beside the evidence and the scores."""
    for i, s in enumerate(supports):
        left, right = st.columns([2, 3])
        left.markdown(f"{ICONS[s.label]} {_span(s.text, s.label)}", unsafe_allow_html=True)
        left.caption(t(G + "label." + s.label))
        if s.label not in ("supported", "unsupported"):
            continue
        if s.passage is None:
            right.caption(t(G + "no_passages"))
            continue
        source = f"[{s.passage + 1}] " + (sources[s.passage] if s.passage < len(sources) else "")
        right.markdown(
            f"<div style='border-left:3px solid #adb5bd;padding-left:8px'>{html.escape(s.evidence)}</div>",
            unsafe_allow_html=True,
        )
        scores = t(G + "scores", source=source.strip(), cos=f"{s.cosine:.2f}", overlap=f"{s.overlap:.0%}")
        if s.missing:
            scores += " · " + t(G + "missing", terms=", ".join(s.missing))
        right.caption(scores, help=t(G + "rule", cos=trust.COSINE_MIN, overlap=f"{trust.OVERLAP_MIN:.0%}"))
        if i < len(supports) - 1:
            st.divider()


def _supports_for(answer: str, passages: tuple[str, ...]):
    """Grounding of one answer, kept in the session so a rerun does not embed again."""
    memo = st.session_state.setdefault(G + "memo", {})
    key = (answer, passages)
    if key not in memo:
        with queue_status():
            memo[key] = trust.ground(answer, list(passages))
        while len(memo) > 32:
            memo.pop(next(iter(memo)))
    return memo[key]


def grounding_card(turn) -> None:
    """The RAG answer card's grounding expander (nothing when there is no answer or no hit)."""
    if not turn.answer or not turn.hits:
        return
    passages = tuple(h.chunk.text for h in turn.hits)
    supports = _supports_for(turn.answer, passages)
    if not supports:
        return
    with st.expander(t(G + "title") + " · " + counts_line(supports), expanded=False):
        st.markdown(marked_answer(supports), unsafe_allow_html=True)
        sources = [t("rag.source_label", doc=h.chunk.doc, page=h.chunk.page) for h in turn.hits]
        sentence_rows(supports, sources)
        st.caption(t(G + "how"))
