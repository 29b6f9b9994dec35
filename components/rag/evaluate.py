"""The Evaluate tab: recall@k and MRR per retrieval method on a question set, then answers scored by token-F1
and by whether their first citation is on the right page (as shown, and by the model's own markers only)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backends.core.jobs import DONE, shared_runner
from backends.rag import pipeline
from backends.rag.evaluate import EvalSetError, citation_accuracy, load_eval_set, run_retrieval_eval
from backends.rag.types import METHODS
from components.builtin_text import file_uploader
from components.i18n import t
from components.job_status import job_status
from components.option_labels import follow_language

P = "rag."


# The answers table's columns (backends.rag.pipeline.answer_eval_job's rows), shown in the page's language;
# a column not listed keeps its name.
ANSWER_COLUMNS = (
    "question",
    "reference",
    "answer",
    "token_f1",
    "forced",
    "cited_pages",
    "model_cited_pages",
    "expected_pages",
    "extractive",
    "extractive_f1",
    "extractive_page",
)


def method_name(method: str) -> str:
    """dense / sparse / hybrid in the page's language (the backend's names are the keys)."""
    return t("rag.method." + method)


def eval_figure(summary: pd.DataFrame, k: int) -> go.Figure:
    methods = [method_name(m) for m in summary["method"]]
    fig = go.Figure()
    fig.add_bar(x=methods, y=summary[f"recall@{k}"], name=f"recall@{k}")
    fig.add_bar(x=methods, y=summary["MRR"], name="MRR")
    fig.update_layout(title=t("rag.eval.chart", k=k), barmode="group", yaxis_range=[0, 1.05], height=360)
    return fig


def eval_items(eval_sets: dict, collection=None):
    """The question set: one of the shipped sets (`eval_sets`: name -> JSONL path; the first is the default)
    or an uploaded CSV/JSONL; None until one is uploaded, or while the documents a set asks about are not
    in the collection."""
    source = st.radio(
        t("rag.eval.source"),
        (*eval_sets, "upload"),
        horizontal=True,
        key=follow_language(P + "eval_source"),
        format_func=lambda s: t("rag.eval.source." + s),
        persist_state="session",
    )
    if source in eval_sets:
        st.caption(t("rag.eval.about." + source))
        path = eval_sets[source]
        items = load_eval_set(path.name, path.read_bytes())
        docs = {c.doc for c in collection.chunks} if collection is not None else set()
        missing = sorted({i.doc for i in items if i.doc and i.doc not in docs})
        if missing:
            st.info(t("rag.eval.missing_doc", docs=", ".join(missing)))
            return None
        return items
    file = file_uploader(t("rag.eval.upload"), type=["csv", "jsonl"], key=P + "eval_file", max_upload_size=10)
    if file is None:
        st.caption(t("rag.eval.format"))
        return None
    return load_eval_set(file.name, file.getvalue())


def evaluate_tab(
    collection,
    search,
    make_generator,
    eval_sets,
    *,
    method: str,
    top_k: int,
    max_new: int,
    prompt_hits: int,
    force_citation: bool = False,
) -> None:
    """Retrieval scores of every method on the question set; search(question, method, k) is the page's."""
    if collection is None:
        st.info(t("rag.index_first"))
        return
    try:
        items = eval_items(eval_sets, collection)
    except EvalSetError as exc:
        st.error(str(exc))
        return
    if not items:
        return
    k = st.slider("k", 1, 10, top_k, key=P + "eval_k", persist_state="session")
    report = run_retrieval_eval(search, items, METHODS, k)
    summary = pd.DataFrame(report.summary_rows())
    # The backend's column names, shown in the page's language (the chart reads the backend's).
    shown = {
        "method": t("rag.eval.col.method"),
        "found": t("rag.eval.col.found"),
        "questions": t("rag.eval.col.questions"),
    }
    table = summary.assign(method=[method_name(m) for m in summary["method"]])
    st.dataframe(table.rename(columns=shown), hide_index=True, key=P + "eval_summary")
    st.plotly_chart(eval_figure(summary, k), key=P + "eval_chart")
    with st.expander(t("rag.eval.per_question")):
        per_question = {
            t("rag.eval.col.question"): report.questions,
            t("rag.eval.col.pages"): [", ".join(map(str, i.pages)) for i in items],
        }
        for name, result in report.results.items():
            per_question[f"{method_name(name)} #"] = result.ranks
        st.dataframe(pd.DataFrame(per_question), hide_index=True, key=P + "eval_rows")
    answers_section(
        items,
        k,
        collection,
        search,
        make_generator,
        method=method,
        max_new=max_new,
        prompt_hits=prompt_hits,
        force_citation=force_citation,
    )


def answers_section(
    items,
    k,
    collection,
    search,
    make_generator,
    *,
    method: str,
    max_new: int,
    prompt_hits: int,
    force_citation: bool = False,
):
    """Answers to the questions that have a reference answer, generated in a background job (begun with a
    citation when the chat's citation forcing is on), scored by token-F1 and citation accuracy."""
    st.markdown("**" + t("rag.eval.answers") + "**")
    with_refs = [i for i in items if i.answer]
    if not with_refs:
        st.caption(t("rag.eval.no_refs"))
        return
    runner = shared_runner()
    job = runner.get(st.session_state.get(P + "answer_job"))
    if st.button(
        t("rag.eval.run_answers", n=len(with_refs)), key=P + "answer_button", disabled=job is not None and not job.done
    ):
        generator, _ = make_generator()
        if generator is not None:
            job = runner.submit(
                "rag-answers",
                pipeline.answer_eval_job,
                search,
                generator,
                with_refs,
                method,
                k,
                min(max_new, 120),
                collection.embed_texts,
                prompt_hits,
                force_citation,
            )
            st.session_state[P + "answer_job"] = job.id
    job_status(
        P + "answer_job", lambda j: t("rag.eval.answering", done=f"{(j.progress or 0) * 100:.0f}"), answers_done
    )


def answers_done(job):
    if job.status != DONE:
        st.error(job.error or job.status)
        return
    frame = pd.DataFrame(job.result)
    cited = citation_accuracy(job.result)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("rag.eval.mean_f1"), f"{frame['token_f1'].mean():.3f}")
    if "extractive_f1" in frame:
        c2.metric(t("rag.eval.extractive_f1"), f"{frame['extractive_f1'].mean():.3f}")
    for column, name in ((c3, "shown"), (c4, "model")):
        share = cited[name]
        column.metric(
            t(f"rag.eval.cited_{name}"),
            "–" if share is None else f"{share:.2f}",
            help=t(f"rag.eval.cited_{name}_help"),
        )
    shown = {name: t("rag.eval.answer_col." + name) for name in ANSWER_COLUMNS if name in frame}
    st.dataframe(frame.rename(columns=shown), hide_index=True, key=P + "answer_rows")
