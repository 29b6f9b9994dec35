"""The grounding tab: a RAG answer over the shipped reference document (or the RAG page's collection,
when this session built one) for a question the learner picks or types, each sentence coloured
supported / unsupported with the passage sentence beside it and the scores. On arrival: a hand-written
answer with one true and one false sentence, grounded on the reference's passages (no generation)."""

from __future__ import annotations

import html

import streamlit as st

from backends import trust
from components.guard import queue_status
from components.i18n import t
from components.option_labels import follow_language
from components.rag.grounding_view import counts_line, marked_answer, sentence_rows

P = "trust.ground."
SOURCES = ("reference", "collection")
# The example shown on arrival: the first sentence is in the reference, the second changes a year.
EXAMPLE_QUESTION = "In what year did the Berlin Wall fall?"
EXAMPLE_ANSWER = "The Berlin Wall fell in 1989. The wall had divided East and West Berlin since 1958."


def _questions() -> list[str]:
    return [q.question for q in trust.shipped_questions()]


def _example() -> tuple:
    """The arrival example, grounded once per session (MiniLM only)."""
    if P + "example" in st.session_state:
        return st.session_state[P + "example"]
    collection = trust.reference_collection()
    hits = collection.search(EXAMPLE_QUESTION, method="hybrid", k=3)
    passages = [h.chunk.text for h in hits]
    st.session_state[P + "example"] = passages, trust.ground(EXAMPLE_ANSWER, passages)
    return st.session_state[P + "example"]


def example() -> None:
    st.markdown("**" + t(P + "example.title") + "**")
    st.caption(t(P + "example.question", q=f"“{EXAMPLE_QUESTION}”"))
    with queue_status(), st.spinner(t(P + "example.loading")):
        passages, supports = _example()
    st.markdown(marked_answer(supports), unsafe_allow_html=True)
    st.caption(counts_line(supports))
    sentence_rows(supports, [t(P + "reference_source")] * len(passages))


def pick_question() -> str | None:
    source = "reference"
    collection = st.session_state.get("rag.collection")
    if collection is not None:
        source = st.radio(
            t(P + "source"),
            SOURCES,
            key=follow_language(P + "source"),
            format_func=lambda s: t(P + "source." + s),
            horizontal=True,
            persist_state="session",
        )
    picked = st.selectbox(t(P + "pick"), _questions(), key=P + "pick", persist_state="session")
    typed = st.text_input(t(P + "typed"), key=P + "typed", persist_state="session", placeholder=t(P + "typed_hint"))
    st.session_state[P + "use_collection"] = source == "collection" and collection is not None
    return typed if typed and typed.strip() else picked


def run(question: str) -> None:
    try:
        question = trust.check_question(question)
    except trust.QuestionError as e:
        st.session_state[P + "error"] = t("trust.question." + e.code, **e.values)
        return
    collection = st.session_state.get("rag.collection") if st.session_state.get(P + "use_collection") else None
    with queue_status(), st.spinner(t(P + "answering")):
        got = trust.answer_with_retrieval(question, collection=collection)
    st.session_state[P + "result"] = {"got": got, "collection": collection is not None}


def result(saved: dict) -> None:
    got = saved["got"]
    st.markdown("**" + t(P + "answer_title", q=f"“{got.question}”") + "**")
    st.markdown(marked_answer(got.supports) or t(P + "empty"), unsafe_allow_html=True)
    st.caption(counts_line(got.supports))
    c = st.columns(3)
    c[0].metric(t(P + "best_sim"), f"{got.best_sim:.3f}", help=t(P + "best_sim_help"))
    c[1].metric(t(P + "claim"), t(P + ("claim.yes" if got.claim_supported else "claim.no")))
    c[2].metric(t(P + "verdict"), t(P + ("verdict.withheld" if got.withheld else "verdict.shown")))
    if got.withheld:
        st.warning(t(P + "withheld", sim=f"{got.best_sim:.2f}"))
    sources = list(got.sources) if saved["collection"] else [t(P + "reference_source")] * len(got.passages)
    sentence_rows(list(got.supports), sources)
    with st.expander(t(P + "passages")):
        for i, text in enumerate(got.passages):
            st.markdown(f"**[{i + 1}]** <span>{html.escape(' '.join(text.split()))}</span>", unsafe_allow_html=True)


def render() -> None:
    st.markdown(t(P + "intro"))
    example()
    st.divider()
    question = pick_question()
    if st.button(t(P + "run"), key=P + "run", type="primary", icon=":material/fact_check:"):
        st.session_state[P + "error"] = None
        run(question)
    if st.session_state.get(P + "error"):
        st.error(st.session_state[P + "error"])
    saved = st.session_state.get(P + "result")
    if saved is not None:
        result(saved)
    st.caption(t(P + "no_nli"))
