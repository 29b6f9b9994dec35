"""The Retrieval tab, a glass box: every candidate with its dense, BM25 and fused scores, and the embedding map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backends.rag.collection import Collection
from backends.rag.projection import project_2d
from backends.rag.types import Hit
from components.i18n import t
from components.show_code import show_code

P = "rag."


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


def retrieval_tab(collection: Collection | None, method: str, top_k: int, weak_threshold: float) -> None:
    """The question (the chat's last one by default), its candidates table, the weak warning and the map."""
    if collection is None:
        st.info(t("rag.index_first"))
        return
    turns = st.session_state.get(P + "turns") or []
    default = turns[-1].query if turns else ""
    question = st.text_input(
        t("rag.glass_question"),
        default,
        key=P + "glass_q",
        placeholder=t("rag.glass_placeholder"),
        persist_state="session",
    )
    if not question.strip():
        st.caption(t("rag.glass_help"))
        return
    query = collection.query_embedding(question)
    hits = collection.candidates_table(question, query_vec=query)
    chosen = {h.chunk.id for h in collection.search(question, method=method, k=top_k, query_vec=query)}
    st.caption(t("rag.glass_caption", n=len(hits), k=top_k, method=t("rag.method." + method)))
    st.dataframe(
        candidates_frame(hits, chosen),
        hide_index=True,
        key=P + "candidates",
        column_config=candidates_columns(),
    )
    best = max((h.dense_score for h in hits if h.dense_score is not None), default=None)
    if best is not None and best < weak_threshold:
        st.warning(t("rag.weak_best", score=f"{best:.3f}", threshold=weak_threshold))
    points, query_point = project_2d(collection.embeddings, query)
    st.plotly_chart(projection_figure(points, query_point, collection.chunks, chosen), key=P + "map")
    show_code(Collection.search)
