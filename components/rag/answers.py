"""The chat's answer cards: the answer as it streams and once finished, its extractive quote and cited sources."""

from __future__ import annotations

import streamlit as st

from backends.rag.types import Hit
from components.guard import queue_status
from components.i18n import t


def source_label(hit: Hit) -> str:
    return t("rag.source_label", doc=hit.chunk.doc, page=hit.chunk.page)


def citation_cards(turn) -> None:
    """Every cited source with its page, passage and scores; uncited retrieved chunks follow."""
    cited = {c.number: c for c in turn.citations}
    if turn.citations:
        st.markdown("**" + t("rag.citations") + "**")
    else:
        st.caption(t("rag.no_citations"))
    for number, hit in enumerate(turn.hits, 1):
        citation = cited.get(number)
        mark = "·" if citation is None else ("≈" if citation.inferred else "📌")
        scored_by = "rerank" if hit.rerank_score is not None else t("rag.method." + turn.method)
        title = f"{mark} [{number}] {source_label(hit)} · {scored_by} {hit.score:.3f}"
        with st.expander(title, expanded=False):
            st.markdown("> " + highlighted(hit, turn.extractive))
            st.caption(scores_line(hit))
            if citation is not None and citation.inferred:
                st.caption(t("rag.inferred", share=f"{citation.overlap:.0%}"))


def scores_line(hit: Hit) -> str:
    parts = []
    for name, score, rank in (
        ("dense", hit.dense_score, hit.dense_rank),
        ("BM25", hit.sparse_score, hit.sparse_rank),
        ("RRF", hit.fused_score, hit.fused_rank),
        ("rerank", hit.rerank_score, None),
    ):
        if score is not None:
            parts.append(f"{name} {score:.4f}" + (f" (#{rank})" if rank else ""))
    return " · ".join(parts)


def highlighted(hit: Hit, found) -> str:
    """The chunk's text with the extractive answer's sentence highlighted, when it is in this chunk."""
    text = hit.chunk.text
    if found is None or found.hit.chunk.id != hit.chunk.id:
        return text.replace("\n", " ")
    before, sentence, after = text[: found.start], text[found.start : found.end], text[found.end :]
    flat = " ".join(sentence.replace("[", "(").replace("]", ")").split())
    return (before + f":orange-background[**{flat}**]" + after).replace("\n", " ")


def extractive_answer(turn) -> None:
    """The sentence of the sources that best answers, quoted word for word with its citation."""
    found = turn.extractive
    if found is None:
        return
    st.markdown(f"**{t('rag.extractive')}** {found.span} [{found.number}]")
    st.caption(
        t("rag.extractive_quote", sentence=found.sentence, n=found.number, source=source_label(found.hit)),
        help=t("rag.extractive_help"),
    )


def answer_header(turn) -> None:
    """What comes above an answer: the rewritten question, the weak-retrieval warning, the extractive quote."""
    if turn.query != turn.question:
        st.caption(t("rag.rewritten", q=turn.query))
    if turn.weak:
        st.warning(t("rag.weak"))
    extractive_answer(turn)
    if turn.extractive is not None:
        st.caption(t("rag.generated"))


def live_answer(turn, generator, compare: bool, max_new: int) -> tuple[str, str | None]:
    """The answer as the generator writes it, beside the one without retrieval when comparing.

    Returns (answer, baseline answer or None); a GeneratorError from the generator reaches the caller.
    """
    with st.chat_message("assistant"), queue_status():
        answer_header(turn)
        if compare:
            left, right = st.columns(2)
            left.markdown("**" + t("rag.with_retrieval") + "**")
            with left:
                text = st.write_stream(generator.stream(turn.messages, max_new_tokens=max_new, prefix=turn.prefix))
            right.markdown("**" + t("rag.without_retrieval") + "**")
            with right:
                baseline = st.write_stream(generator.stream(turn.baseline_messages, max_new_tokens=max_new))
        else:
            text = st.write_stream(generator.stream(turn.messages, max_new_tokens=max_new, prefix=turn.prefix))
            baseline = None
    return streamed_text(text), None if baseline is None else streamed_text(baseline)


def streamed_text(written) -> str:
    """st.write_stream returns a str when every piece was text, else the list of pieces."""
    return written if isinstance(written, str) else "".join(map(str, written))


def show_turn(turn) -> None:
    """One finished chat turn: question, answer (beside the no-retrieval one), sources and the exact prompt."""
    with st.chat_message("user"):
        st.markdown(turn.question)
    with st.chat_message("assistant"):
        answer_header(turn)
        if turn.baseline_answer is not None:
            left, right = st.columns(2)
            left.markdown("**" + t("rag.with_retrieval") + "**\n\n" + turn.answer)
            right.markdown("**" + t("rag.without_retrieval") + "**\n\n" + turn.baseline_answer)
        else:
            st.markdown(turn.answer or t("rag.empty_answer"))
        citation_cards(turn)
        with st.expander(t("rag.prompt")):
            st.code(turn.prompt, language=None, wrap_lines=True)
            if turn.baseline_prompt:
                st.caption(t("rag.without_retrieval"))
                st.code(turn.baseline_prompt, language=None, wrap_lines=True)
