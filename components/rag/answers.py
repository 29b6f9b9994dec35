"""The chat's answer cards: the answer as it streams and once finished, its extractive quote and cited sources."""

from __future__ import annotations

import streamlit as st

from backends.rag.types import Hit
from components.guard import queue_status
from components.i18n import t
from components.rag.grounding_view import grounding_card
from components.rag.language import question_language_warning


def source_label(hit: Hit) -> str:
    return t("rag.source_label", doc=hit.chunk.doc, page=hit.chunk.page)


# Citation marks: the model's own marker, the app's (citation forcing), matched by wording, not cited.
MARK_MODEL, MARK_FORCED, MARK_INFERRED, MARK_NONE = "📌", "🔧", "≈", "·"


def citation_mark(citation) -> str:
    if citation is None:
        return MARK_NONE
    if citation.forced:
        return MARK_FORCED
    return MARK_INFERRED if citation.inferred else MARK_MODEL


def forced_badge(turn, number: int) -> None:
    """The badge of a citation the app wrote, with the tooltip that says so."""
    st.badge(
        t("rag.forced_badge", n=number),
        icon=MARK_FORCED,
        color="orange",
        help=t("rag.forced_help", prefix=turn.prefix),
    )


def citation_cards(turn) -> None:
    """Every cited source with its page, passage and scores; uncited retrieved chunks follow."""
    cited = {c.number: c for c in turn.citations}
    if turn.citations:
        st.markdown("**" + t("rag.citations") + "**")
    else:
        st.caption(t("rag.no_citations"))
    if any(c.forced for c in turn.citations) and not any(c.by_model for c in turn.citations):
        st.caption(t("rag.forced_only"))
    for number, hit in enumerate(turn.hits, 1):
        citation = cited.get(number)
        scored_by = "rerank" if hit.rerank_score is not None else t("rag.method." + turn.method)
        title = f"{citation_mark(citation)} [{number}] {source_label(hit)} · {scored_by} {hit.score:.3f}"
        with st.expander(title, expanded=False):
            if citation is not None and citation.forced:
                forced_badge(turn, number)
            st.markdown("> " + highlighted(hit, turn.extractive))
            st.caption(scores_line(hit))
            if citation is not None and citation.inferred:
                st.caption(t("rag.inferred", share=f"{citation.overlap:.0%}"))


def forced_markup(prefix: str) -> str:
    """The app's start of an answer drawn as a badge (brackets escaped, as st.badge does)."""
    label = prefix.replace("[", "\\[").replace("]", "\\]")
    return f":orange-badge[{MARK_FORCED} {label}]"


def answer_markdown(turn, answer: str) -> str:
    """The answer with the part the app wrote (citation forcing) drawn apart from the model's text."""
    if turn.prefix and answer.startswith(turn.prefix):
        return forced_markup(turn.prefix) + answer[len(turn.prefix) :]
    return answer


def answer_help(turn) -> str | None:
    return t("rag.forced_help", prefix=turn.prefix) if turn.prefix else None


def marked_stream(pieces, prefix: str):
    """The generator's pieces with its first, the app's prefix, drawn as a badge."""
    for i, piece in enumerate(pieces):
        yield forced_markup(prefix) if i == 0 and prefix and piece == prefix else piece


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
    question_language_warning(turn.question)
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
                text = st.write_stream(marked_stream(answer_pieces(turn, generator, max_new), turn.prefix))
            right.markdown("**" + t("rag.without_retrieval") + "**")
            with right:
                baseline = st.write_stream(generator.stream(turn.baseline_messages, max_new_tokens=max_new))
        else:
            text = st.write_stream(marked_stream(answer_pieces(turn, generator, max_new), turn.prefix))
            baseline = None
    answer = streamed_text(text)
    if turn.prefix:
        answer = answer.replace(forced_markup(turn.prefix), turn.prefix, 1)
    return answer, None if baseline is None else streamed_text(baseline)


def answer_pieces(turn, generator, max_new: int):
    return generator.stream(turn.messages, max_new_tokens=max_new, prefix=turn.prefix)


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
            left.markdown(
                "**" + t("rag.with_retrieval") + "**\n\n" + answer_markdown(turn, turn.answer), help=answer_help(turn)
            )
            right.markdown("**" + t("rag.without_retrieval") + "**\n\n" + turn.baseline_answer)
        else:
            st.markdown(answer_markdown(turn, turn.answer) or t("rag.empty_answer"), help=answer_help(turn))
        citation_cards(turn)
        grounding_card(turn)
        with st.expander(t("rag.prompt")):
            st.code(turn.prompt, language=None, wrap_lines=True)
            if turn.baseline_prompt:
                st.caption(t("rag.without_retrieval"))
                st.code(turn.baseline_prompt, language=None, wrap_lines=True)
