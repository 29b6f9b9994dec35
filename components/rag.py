"""The RAG page's pictures: ingest reports, chunk inspector, citations, retrieval glass box, evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backends.rag.types import INGEST_OK, Hit
from components.i18n import t


def reports_table(reports, chunks) -> None:
    per_doc: dict[str, int] = {}
    for chunk in chunks:
        per_doc[chunk.doc] = per_doc.get(chunk.doc, 0) + 1
    rows = [
        {
            t("rag.col.doc"): r.doc,
            t("rag.col.status"): t("rag.status." + r.status),
            t("rag.col.pages"): r.pages,
            t("rag.col.chunks"): per_doc.get(r.doc, 0),
            t("rag.col.message"): r.message,
        }
        for r in reports
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="rag.reports_table")
    for r in reports:
        if r.status != INGEST_OK:
            st.warning(f"**{r.doc}**: {r.message}")
        elif "Note:" in r.message:  # kept, but something was left out or read another way: say so
            st.info(f"**{r.doc}**: {r.message}")


def chunk_inspector(collection, key: str = "rag.inspect") -> None:
    docs = sorted({c.doc for c in collection.chunks})
    if not docs:
        return
    c1, c2 = st.columns([2, 1])
    doc = c1.selectbox(t("rag.inspect_doc"), docs, key=key + ".doc", persist_state="session")
    pages = sorted({c.page for c in collection.chunks if c.doc == doc})
    page = c2.selectbox(
        t("rag.inspect_page"),
        [0, *pages],
        key=key + ".page",
        format_func=lambda p: t("rag.all_pages") if p == 0 else str(p),
        persist_state="session",
    )
    chosen = [c for c in collection.chunks if c.doc == doc and (page == 0 or c.page == page)]
    lengths = [len(c.text) for c in chosen]
    st.caption(
        t("rag.inspect_stats", n=len(chosen), mean=f"{np.mean(lengths):.0f}", low=min(lengths), high=max(lengths))
    )
    frame = pd.DataFrame(
        {
            "id": [c.id for c in chosen],
            t("rag.col.page"): [c.page for c in chosen],
            t("rag.col.kind"): [t("rag.kind." + c.kind) for c in chosen],
            t("rag.col.chars"): lengths,
            t("rag.col.start"): [c.start for c in chosen],
            t("rag.col.text"): [c.text for c in chosen],
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        key=key + ".table",
        column_config={t("rag.col.text"): st.column_config.TextColumn(width="large")},
    )


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


NOT_RANKED = "–"


def candidates_frame(hits: list[Hit], chosen: set[int]) -> pd.DataFrame:
    """One row per candidate; a method that did not rank a chunk in its own top list shows a dash."""

    def fmt(value):
        return None if value is None else round(float(value), 4)

    def rank(value):
        return NOT_RANKED if value is None else str(value)

    return pd.DataFrame(
        [
            {
                t("rag.col.rank"): h.rank,
                t("rag.col.top_k"): h.chunk.id in chosen,
                t("rag.col.doc"): h.chunk.doc,
                t("rag.col.page"): h.chunk.page,
                "dense": fmt(h.dense_score),
                "dense #": rank(h.dense_rank),
                "BM25": fmt(h.sparse_score),
                "BM25 #": rank(h.sparse_rank),
                "RRF": fmt(h.fused_score),
                "RRF #": rank(h.fused_rank),
                t("rag.col.text"): h.chunk.text[:300],
            }
            for h in hits
        ]
    )


def candidates_columns() -> dict:
    """Column help for the glass box: why a rank can be a dash."""
    return {
        name: st.column_config.TextColumn(name, help=t("rag.col.rank_help", method=method))
        for name, method in (("dense #", "dense"), ("BM25 #", "BM25"), ("RRF #", "RRF"))
    }


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


def store_settings() -> tuple[str, str | None]:
    """The vector store: FAISS in this process, or Qdrant (in this process, or a server URL)."""
    from backends.rag.stores import STORES

    store = st.radio(
        t("rag.store"),
        STORES,
        horizontal=True,
        key="rag.store",
        help=t("rag.store_help"),
        format_func=lambda s: t("rag.store." + s),
        persist_state="session",
    )
    url = None
    if store == "qdrant":
        url = (
            st.text_input(
                t("rag.store_url"),
                "",
                key="rag.store_url",
                placeholder="http://localhost:6333",
                help=t("rag.store_url_help"),
                persist_state="session",
            ).strip()
            or None
        )
    return store, url


def projection_figure(points: np.ndarray, query_point: np.ndarray, chunks, top_ids: set[int]) -> go.Figure:
    labels = [f"[{c.id}] {c.doc} p.{c.page}: {c.text[:80]}" for c in chunks]
    top = np.array([c.id in top_ids for c in chunks], dtype=bool)
    fig = go.Figure()
    fig.add_scatter(
        x=points[~top, 0],
        y=points[~top, 1],
        mode="markers",
        name=t("rag.map.chunks"),
        text=[label for label, keep in zip(labels, top) if not keep],
        hoverinfo="text",
        marker=dict(size=7, color="#9aa5b1"),
    )
    fig.add_scatter(
        x=points[top, 0],
        y=points[top, 1],
        mode="markers",
        name=t("rag.map.retrieved"),
        text=[label for label, keep in zip(labels, top) if keep],
        hoverinfo="text",
        marker=dict(size=11, color="#e4572e"),
    )
    fig.add_scatter(
        x=[query_point[0]],
        y=[query_point[1]],
        mode="markers+text",
        name=t("rag.map.question"),
        text=["?"],
        textposition="top center",
        marker=dict(size=16, symbol="star", color="#1f77b4"),
    )
    fig.update_layout(
        title=t("rag.map.title"),
        height=460,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis_title="PC 1",
        yaxis_title="PC 2",
    )
    return fig


def eval_figure(summary: pd.DataFrame, k: int) -> go.Figure:
    fig = go.Figure()
    fig.add_bar(x=summary["method"], y=summary[f"recall@{k}"], name=f"recall@{k}")
    fig.add_bar(x=summary["method"], y=summary["MRR"], name="MRR")
    fig.update_layout(title=t("rag.eval.chart", k=k), barmode="group", yaxis_range=[0, 1.05], height=360)
    return fig


def show_turn(turn) -> None:
    """One finished chat turn: question, answer (beside the no-retrieval one), sources and the exact prompt."""
    with st.chat_message("user"):
        st.markdown(turn.question)
    with st.chat_message("assistant"):
        if turn.query != turn.question:
            st.caption(t("rag.rewritten", q=turn.query))
        if turn.weak:
            st.warning(t("rag.weak"))
        extractive_answer(turn)
        if turn.extractive is not None:
            st.caption(t("rag.generated"))
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
