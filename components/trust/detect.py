"""The Detect tab: one question's answer checked against its own samples (sentences coloured by how little
the samples support them, tokens by probability with their entropy), and the whole shipped set's ROC
curves and AUCs for the three scores (MiniLM self-consistency, unigram self-consistency, token entropy)."""

from __future__ import annotations

import html
import re
from collections import Counter

import plotly.graph_objects as go
import streamlit as st

from backends import trust
from backends.core.jobs import shared_runner
from components import engine
from components.decoding import probability_chips
from components.i18n import t
from components.live_job import live_panel
from components.option_labels import follow_language

P = "trust.detect."
ONE, SET = P + "one.", P + "set."
RED_AT = 0.6  # a MiniLM inconsistency at or above this is drawn fully red
COLOURS = {"minilm": "#1971c2", "ngram": "#2b8a3e", "entropy": "#e8590c"}
SAMPLE_CHOICES = (2, 3, 5, 8, 10)


def md_text(text: str) -> str:
    """Plain text shown through st.markdown: markdown's special characters escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", text)


def _colour(score: float) -> str:
    hue = int(120 * (1 - max(0.0, min(1.0, score / RED_AT))))  # 120 green -> 0 red
    return f"hsl({hue}, 70%, 82%)"


def kind_name(kind: str) -> str:
    return t(P + "kind." + kind)


def shipped_table() -> None:
    """The shipped questions by kind: what the whole-set run answers and grades (shown on arrival)."""
    questions = trust.shipped_questions()
    counts = Counter(q.kind for q in questions)
    cols = st.columns(len(trust.KINDS) + 1)
    cols[0].metric(t(P + "shipped.total"), len(questions))
    for col, kind in zip(cols[1:], trust.KINDS, strict=True):
        col.metric(kind_name(kind), counts.get(kind, 0))
    st.caption(t(P + "shipped.kinds"))
    with st.expander(t(P + "shipped.list")):
        st.dataframe(
            [
                {
                    t(P + "col.id"): q.id,
                    t(P + "col.kind"): kind_name(q.kind),
                    t(P + "col.question"): q.question,
                    t(P + "col.accepted"): ", ".join(q.answers) or "–",
                }
                for q in questions
            ],
            hide_index=True,
        )


# ---- one question -------------------------------------------------------------------------------


def question_picker() -> tuple[str, object | None]:
    """(the question text as typed or picked, the shipped Question or None)."""
    source = st.radio(
        t(ONE + "source"),
        ("shipped", "own"),
        key=follow_language(ONE + "source"),
        format_func=lambda s: t(ONE + "source." + s),
        horizontal=True,
        persist_state="session",
    )
    if source == "shipped":
        by_id = {q.id: q for q in trust.shipped_questions()}
        pick = st.selectbox(
            t(ONE + "pick"),
            list(by_id),
            key=follow_language(ONE + "pick"),
            format_func=lambda i: f"{by_id[i].question}  ({kind_name(by_id[i].kind)})",
            persist_state="session",
        )
        return by_id[pick].question, by_id[pick]
    text = st.text_area(t(ONE + "own"), "", key=ONE + "own", height=80, persist_state="session")
    match = next((q for q in trust.shipped_questions() if q.question == text.strip()), None)
    return text, match


def start_one(text: str, question) -> None:
    st.session_state[ONE + "error"] = None
    try:
        checked = trust.check_question(text)
    except trust.QuestionError as e:
        st.session_state[ONE + "error"] = t("trust.question." + e.code, **e.values)
        return
    n = int(st.session_state.get(ONE + "n", trust.N_SAMPLES))
    seed = int(st.session_state.get(ONE + "seed", 0))
    if st.session_state.get(ONE + "where") == "remote" and engine.remote_on():
        try:
            remote = engine.make_engine(st.session_state.get(ONE + "remote_model") or "")
        except ValueError as exc:
            st.session_state[ONE + "error"] = t(ONE + "remote_bad", error=str(exc))
            return
        job = shared_runner().submit("trust.detect.one", trust.selfcheck_remote_job, checked, remote, n, seed)
        st.session_state[ONE + "remote"] = engine.server_label()
    else:
        job = shared_runner().submit("trust.detect.one", trust.selfcheck_job, checked, n, seed)
        st.session_state[ONE + "remote"] = None
    st.session_state[ONE + "job"] = job.id
    st.session_state[ONE + "asked"] = question.id if question is not None else None


def finish_one(job) -> None:
    if job is not None and job.result is not None:
        st.session_state[ONE + "result"] = (job.result, st.session_state.get(ONE + "asked"))
        st.session_state[ONE + "result_remote"] = st.session_state.get(ONE + "remote")


def sentences_html(check) -> str:
    parts = []
    for s in check.sentences:
        title = html.escape(
            t(ONE + "sentence_hover", minilm=f"{s.minilm:.3f}", ngram=f"{s.ngram:.2f}", h=f"{s.entropy:.2f}")
        )
        parts.append(
            f'<span title="{title}" style="background:{_colour(s.minilm)};border-radius:4px;padding:2px 4px;'
            f'margin:1px;line-height:2">{html.escape(s.text)} <sub><b>{s.minilm:.2f}</b></sub></span>'
        )
    return " ".join(parts) or html.escape(check.answer)


def entropy_figure(check) -> go.Figure:
    labels = [f"{i}:{tok.text.strip() or '␣'}" for i, tok in enumerate(check.tokens)]
    fig = go.Figure()
    fig.add_bar(x=labels, y=[tok.entropy for tok in check.tokens], name=t(ONE + "entropy"), marker_color="#e8590c")
    fig.add_scatter(
        x=labels,
        y=[-tok.logprob for tok in check.tokens],
        name=t(ONE + "surprise"),
        mode="markers",
        marker_color="#1971c2",
    )
    fig.update_layout(height=300, margin={"t": 20, "b": 40}, yaxis_title=t(ONE + "nats"), legend={"orientation": "h"})
    return fig


def show_one(check, asked_id) -> None:
    st.markdown(f"**{md_text(check.question)}**")
    remote = st.session_state.get(ONE + "result_remote")
    if remote:
        st.info(t(ONE + "remote_note", url=remote, k=trust.TOP_LOGPROBS))
    st.markdown(f'<div style="font-size:1.05em">{sentences_html(check)}</div>', unsafe_allow_html=True)
    st.caption(t(ONE + "colour_scale", red=f"{RED_AT:.1f}"))
    question = next((q for q in trust.shipped_questions() if q.id == asked_id), None)
    cols = st.columns(4)
    if question is not None:
        cols[0].metric(t(ONE + "grade"), t(P + "grade." + trust.grade(question, check.answer)))
    cols[1].metric(t(ONE + "answer_minilm"), f"{check.answer_score('minilm'):.3f}")
    cols[2].metric(t(ONE + "answer_entropy"), f"{check.answer_score('entropy'):.3f}")
    cols[3].metric(t(ONE + "seconds"), f"{check.seconds:.1f}")
    st.dataframe(
        [
            {
                t(P + "col.sentence"): s.text,
                t(P + "col.minilm"): round(s.minilm, 3),
                t(P + "col.ngram"): round(s.ngram, 3),
                t(P + "col.ngram_max"): round(s.ngram_max, 3),
                t(P + "col.entropy"): round(s.entropy, 3),
                t(P + "col.surprise"): round(s.surprise_max, 3),
            }
            for s in check.sentences
        ],
        hide_index=True,
    )
    with st.expander(t(ONE + "samples", n=len(check.samples), seed=check.seed), expanded=True):
        for i, sample in enumerate(check.samples):
            st.markdown(f"{i + 1}\\. {md_text(sample) or '∅'}")
    st.markdown(t(ONE + "tokens"))
    st.markdown(probability_chips(check.steps), unsafe_allow_html=True)
    st.plotly_chart(entropy_figure(check), key=ONE + "entropy_chart")
    st.caption(t(ONE + "nli_offline"))


def one_question() -> None:
    st.subheader(t(ONE + "title"))
    text, question = question_picker()
    c = st.columns(2)
    c[0].select_slider(t(ONE + "n"), SAMPLE_CHOICES, value=trust.N_SAMPLES, key=ONE + "n", persist_state="session")
    c[1].number_input(t(ONE + "seed"), 0, 10_000, 0, key=ONE + "seed", persist_state="session")
    if engine.remote_on():
        where = st.radio(
            t(ONE + "where"),
            ("app", "remote"),
            format_func=lambda w: t(ONE + "where." + w),
            help=t(ONE + "where_help", url=engine.server_label()),
            key=follow_language(ONE + "where"),
            horizontal=True,
            persist_state="session",
        )
        if where == "remote":
            engine.remote_model_input(ONE + "remote_model", "")
    job = shared_runner().get(st.session_state.get(ONE + "job"))
    running = job is not None and not job.done
    if st.button(t(ONE + "run"), key=ONE + "run", type="primary", disabled=running, icon=":material/fact_check:"):
        start_one(text, question)
    if st.session_state.get(ONE + "error"):
        st.error(st.session_state[ONE + "error"])

    def progress(job, events):
        data = events[-1].data if events else {}
        return job.progress or 0.0, t(ONE + "progress", done=data.get("done", 0), total=data.get("total", 1))

    live_panel(ONE, finish_one, progress, lambda job, events: None)
    kept = st.session_state.get(ONE + "result")
    if kept is not None:
        show_one(*kept)


# ---- the whole set ------------------------------------------------------------------------------


def roc_figure(report) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name=t(SET + "chance"), line={"dash": "dot", "color": "#adb5bd"})
    for scorer in trust.SCORERS:
        curve, auc = report.curves.get(scorer), report.aucs.get(scorer)
        if curve is None:
            continue
        fig.add_scatter(
            x=list(curve.fpr),
            y=list(curve.tpr),
            mode="lines+markers",
            line={"shape": "linear", "color": COLOURS[scorer]},
            name=t(SET + "legend", scorer=t(P + "scorer." + scorer), auc=f"{auc:.3f}"),
        )
    fig.update_layout(
        height=420,
        margin={"t": 20, "b": 40},
        xaxis_title=t(SET + "fpr"),
        yaxis_title=t(SET + "tpr"),
        xaxis_range=[0, 1],
        yaxis_range=[0, 1.02],
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _auc_text(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def show_report(report) -> None:
    counts = report.counts
    c = st.columns(6)
    for col, scorer in zip(c[:3], trust.SCORERS, strict=True):
        col.metric(t(SET + "auc", scorer=t(P + "scorer." + scorer)), _auc_text(report.aucs.get(scorer)))
    for col, g in zip(c[3:], ("right", "wrong", "abstained"), strict=True):
        col.metric(t(P + "grade." + g), counts[g])
    st.caption(
        t(
            SET + "measured",
            n=len(report.rows),
            samples=report.n_samples,
            seed=report.seed,
            s=f"{report.seconds:.0f}",
            minilm=_auc_text(report.sentence_aucs.get("minilm")),
            entropy=_auc_text(report.sentence_aucs.get("entropy")),
        )
    )
    st.plotly_chart(roc_figure(report), key=SET + "roc")
    st.dataframe(
        [
            {
                t(P + "col.id"): r.id,
                t(P + "col.kind"): kind_name(r.kind),
                t(P + "col.question"): r.question,
                t(P + "col.answer"): r.answer,
                t(P + "col.grade"): t(P + "grade." + r.grade),
                t(P + "col.minilm"): round(r.scores["minilm"], 3),
                t(P + "col.ngram"): round(r.scores["ngram"], 3),
                t(P + "col.entropy"): round(r.scores["entropy"], 3),
                t(P + "col.sentences"): " | ".join(f"{s.minilm:.2f}" for s in r.sentences),
            }
            for r in report.rows
        ],
        hide_index=True,
    )


def whole_set() -> None:
    st.subheader(t(SET + "title"))
    st.caption(t(SET + "unit"))
    job = shared_runner().get(st.session_state.get(SET + "job"))
    running = job is not None and not job.done
    if st.button(t(SET + "run"), key=SET + "run", disabled=running, icon=":material/query_stats:"):
        job = shared_runner().submit("trust.detect.set", trust.detect_job, trust.N_SAMPLES, 0)
        st.session_state[SET + "job"] = job.id

    def finish(job) -> None:
        if job is not None and job.result is not None:
            st.session_state[SET + "result"] = job.result

    def progress(job, events):
        rows = [e.data for e in events if e.data.get("kind") == "row"]
        found = Counter(r["grade"] for r in rows)
        text = t(
            SET + "progress",
            done=len(rows),
            total=len(trust.shipped_questions()),
            right=found["right"],
            wrong=found["wrong"],
        )
        return job.progress or 0.0, text

    live_panel(SET, finish, progress, lambda job, events: None)
    report = st.session_state.get(SET + "result") or trust.cached_detect(trust.N_SAMPLES, 0)
    if report is not None:
        show_report(report)


def render() -> None:
    st.markdown(t(P + "intro"))
    shipped_table()
    one_question()
    whole_set()
