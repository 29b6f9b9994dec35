"""The correct-or-abstain tab: the shipped questions answered closed book, with retrieval over the
shipped reference document, and with retrieval + abstain, as a background job; the before/after
table per kind and every question's row. On arrival: each question's best retrieval similarity
against the abstain threshold (MiniLM only), or the whole report when this process already has it."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from backends import trust
from backends.core.jobs import shared_runner
from components.guard import queue_status
from components.i18n import t
from components.live_job import live_panel

P = "trust.correct."
MODES = ("closed", "rag", "abstain")
KIND_COLOURS = {"common": "#2b8a3e", "specific": "#1971c2", "invented": "#e8590c"}


def _pct(x) -> str:
    return "–" if x is None else f"{x:.0%}"


def similarity_figure(rows: list[dict], threshold: float) -> go.Figure:
    fig = go.Figure()
    for kind, colour in KIND_COLOURS.items():
        sel = [r for r in rows if r["kind"] == kind]
        fig.add_scatter(
            x=[r["id"] for r in sel],
            y=[r["best_sim"] for r in sel],
            mode="markers",
            name=t(P + "kind." + kind),
            marker={"color": colour, "size": 9},
            customdata=[[r["question"]] for r in sel],
            hovertemplate="%{customdata[0]}<br>%{y:.3f}<extra></extra>",
        )
    ids = [r["id"] for r in rows]
    fig.add_scatter(
        x=[ids[0], ids[-1]],
        y=[threshold, threshold],
        mode="lines",
        name=t(P + "threshold", v=f"{threshold:.2f}"),
        line={"dash": "dot", "color": "#868e96"},
        hoverinfo="skip",
    )
    fig.update_layout(
        height=320,
        margin={"t": 20, "b": 40},
        yaxis_title=t(P + "sim_y"),
        legend={"orientation": "h", "y": -0.25},
        xaxis={"showticklabels": False},
    )
    return fig


def similarities() -> None:
    st.markdown("**" + t(P + "sim_title") + "**")
    rows = st.session_state.get(P + "sims")
    if rows is None:
        with queue_status(), st.spinner(t(P + "sim_loading")):
            rows = st.session_state[P + "sims"] = trust.retrieval_similarities()
    threshold = trust.Settings().sim_min
    st.plotly_chart(similarity_figure(rows, threshold), key=P + "sim_chart")
    below = {k: sum(r["best_sim"] < threshold for r in rows if r["kind"] == k) for k in KIND_COLOURS}
    counts = {k: sum(r["kind"] == k for r in rows) for k in KIND_COLOURS}
    st.caption(
        t(
            P + "sim_caption",
            invented=below["invented"],
            n_invented=counts["invented"],
            real=below["common"] + below["specific"],
            n_real=counts["common"] + counts["specific"],
        )
    )


def summary_table(report: dict) -> list[dict]:
    rows = []
    for kind in (*KIND_COLOURS, "all"):
        for mode in MODES:
            s = report["summary"][mode][kind]
            caught = report["caught_by_kind"].get(kind) if kind != "all" else report["abstain_caught"]
            rows.append(
                {
                    t(P + "col.kind"): t(P + "kind." + kind),
                    t(P + "col.mode"): t(P + "mode." + mode),
                    t(P + "col.accuracy"): f"{s['accuracy']:.0%} ({s['right']}/{s['n']})",
                    t(P + "col.abstained"): f"{s['abstention']:.0%}",
                    t(P + "col.wrong"): s["wrong"],
                    t(P + "col.caught"): _pct(caught) if mode == "abstain" else "",
                }
            )
    return rows


def question_rows(rows: list[dict]) -> list[dict]:
    return [
        {
            "id": r["id"],
            t(P + "col.question"): r["question"],
            t(P + "mode.closed"): r["closed"],
            t(P + "col.closed_grade"): t(P + "grade." + r["closed_grade"]),
            t(P + "mode.rag"): r["rag"],
            t(P + "col.rag_grade"): t(P + "grade." + r["rag_grade"]),
            t(P + "col.best_sim"): round(r["best_sim"], 3),
            t(P + "col.supported"): "✅" if r["claim_supported"] else "⚠️",
            t(P + "col.withheld"): "✋" if r["withheld"] else "",
            t(P + "col.abstain_grade"): t(P + "grade." + r["abstain_grade"]),
        }
        for r in rows
    ]


def results(report: dict) -> None:
    c = st.columns(4)
    closed, rag = report["summary"]["closed"]["all"], report["summary"]["rag"]["all"]
    c[0].metric(t(P + "metric.closed"), f"{closed['accuracy']:.0%}")
    c[1].metric(t(P + "metric.rag"), f"{rag['accuracy']:.0%}", f"{report['rag_fix_acc_gain']:+.0%}")
    c[2].metric(t(P + "metric.caught"), _pct(report["abstain_caught"]), help=t(P + "metric.caught_help"))
    c[3].metric(
        t(P + "metric.right_withheld"), _pct(report["right_withheld"]), help=t(P + "metric.right_withheld_help")
    )
    st.caption(t(P + "vs_closed", share=_pct(report["caught_vs_closed"])))
    st.dataframe(summary_table(report), hide_index=True, key=P + "summary")
    with st.expander(t(P + "rows_title")):
        st.dataframe(question_rows(report["rows"]), hide_index=True, key=P + "rows")
    if report.get("seconds"):
        st.caption(t(P + "took", s=f"{report['seconds']:.0f}", n=len(report["rows"])))


def finish(job) -> None:
    if job is not None and job.result is not None:
        st.session_state[P + "result"], job.result = job.result.to_dict(), None


def live() -> None:
    def progress(job, events):
        done = events[-1].data.get("done", 0) if events else 0
        return job.progress or 0.0, t(P + "progress", done=done, n=len(trust.shipped_questions()))

    def draw(job, events):
        if job.done:
            return
        rows = [e.data["row"] for e in events if e.data.get("kind") == "row"]
        if rows:
            st.dataframe(question_rows(rows), hide_index=True, key=P + "live_rows")

    live_panel(P, finish, progress, draw)


def render() -> None:
    st.markdown(t(P + "intro"))
    if st.session_state.get(P + "result") is None:
        ready = trust.cached_report()
        if ready is not None:
            st.session_state[P + "result"] = ready.to_dict()
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "run"), key=P + "run", type="primary", disabled=running, icon=":material/rule:"):
        job = shared_runner().submit("trust.correct", trust.evaluate_correct)
        st.session_state[P + "job"] = job.id
        st.rerun()
    st.caption(t(P + "run_note"))
    live()
    report = st.session_state.get(P + "result")
    if report is not None:
        results(report)
    else:
        st.info(t(P + "no_run"))
    similarities()
