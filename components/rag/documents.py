"""The Documents tab's pictures: what each file's ingest kept (reports table) and the chunk inspector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from backends.rag.types import INGEST_OK
from components.i18n import t
from components.option_labels import follow_language


def report_message(report) -> str:
    """What happened to the file, in the page's language and without its name (the table and the boxes
    show the name beside it); a report from before messages were data (an old saved collection) keeps
    its English message."""
    if not report.key:
        return report.message
    text = t("rag.ingest." + report.key, **report.values)
    if report.notes:
        notes = t("rag.ingest.note_sep").join(t("rag.ingest.note." + k, **v) for k, v in report.notes)
        text += " " + t("rag.ingest.notes", notes=notes)
    return text


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
            t("rag.col.message"): report_message(r),
        }
        for r in reports
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="rag.reports_table")
    for r in reports:
        if r.status != INGEST_OK:
            st.warning(f"**{r.doc}**: {report_message(r)}")
        elif r.notes or (not r.key and "Note:" in r.message):  # kept, but something was left out: say so
            st.info(f"**{r.doc}**: {report_message(r)}")


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
        key=follow_language(key + ".page"),
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
