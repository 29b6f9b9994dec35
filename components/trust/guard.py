"""The guardrails tab: a request through the pipeline step by step (patterns, similarity, guard model:
verdict, score, detail, where it would stop), the model's answer (SmolLM2, as a job) or a pasted answer
through the output checks, and the pipeline measured on the shipped sets: false positives on the benign
set (each one listed) and recall on the held-out unsafe set, per check."""

from __future__ import annotations

import streamlit as st

from backends import trust
from backends.core.jobs import shared_runner
from components.guard import queue_status
from components.i18n import t
from components.live_job import live_panel
from components.option_labels import follow_language

P = "trust.guard."
SETS = ("examples", "heldout", "benign")
CUSTOM = "custom"
MAX_ANSWER_TOKENS = 64


def _items() -> dict[str, tuple[str, trust.GuardItem]]:
    return {item.id: (name, item) for name in SETS for item in trust.guard_set(name)}


def _pick_changed() -> None:
    choice = st.session_state.get(P + "pick")
    if choice and choice != CUSTOM:
        st.session_state[P + "text"] = _items()[choice][1].text


def _check_name(name: str) -> str:
    return t(P + "check." + name.replace(" ", "_"))


def _verdict(verdict: str) -> str:
    return t(P + "verdict." + verdict)


def _detail(result: trust.CheckResult) -> str:
    data = result.data
    if result.name == "patterns":
        if not data.get("matches"):
            return t(P + "detail.no_match")
        return "; ".join(
            f"{t(P + 'category.' + m['category'])}: `{m['pattern']}` “{m['match'][:60]}”" for m in data["matches"]
        )
    if result.name == "similarity":
        return t(P + "detail.nearest", id=data["nearest_id"], text=data["nearest_text"])
    if result.name == "leak":
        if data.get("no_system"):
            return t(P + "detail.no_system")
        return t(P + "detail.leak", n=len(data.get("shared", [])))
    reason = data.get("reason")
    if reason in ("not_configured", "offline"):
        return t(P + "detail.model_" + reason, env=trust.GUARD_MODEL_ENV)
    return f"`{result.detail}`"


def pipeline_table(result: trust.GuardResult) -> None:
    """Each check in order: verdict, score, threshold, detail, and whether the request stops there."""
    stop = result.blocked_by
    rows = []
    for i, c in enumerate(result.checks, 1):
        rows.append(
            {
                t(P + "col.step"): i,
                t(P + "col.check"): _check_name(c.name),
                t(P + "col.verdict"): _verdict(c.verdict),
                t(P + "col.score"): None if c.score is None else round(c.score, 3),
                t(P + "col.threshold"): None if c.threshold is None else round(c.threshold, 3),
                t(P + "col.stops"): t(P + "stops_here") if c.name == stop else "",
                t(P + "col.detail"): _detail(c),
            }
        )
    st.dataframe(rows, hide_index=True, key=P + result.stage + "_table")
    if stop is None:
        st.success(t(P + result.stage + ".passes"))
    else:
        st.error(t(P + result.stage + ".blocked", check=_check_name(stop)))


def request_part() -> str | None:
    items = _items()
    st.selectbox(
        t(P + "pick"),
        [CUSTOM, *items],
        format_func=lambda k: (
            t(P + "pick.custom")
            if k == CUSTOM
            else f"{t(P + 'set.' + items[k][0])} · {t(P + 'category.' + items[k][1].category)} · {items[k][1].text}"
        ),
        key=follow_language(P + "pick"),
        on_change=_pick_changed,
        persist_state="session",
    )
    if P + "text" not in st.session_state:
        st.session_state[P + "text"] = trust.guard_set("benign")[0].text
    text = st.text_area(t(P + "request"), key=P + "text", height=90, persist_state="session")
    try:
        return trust.check_question(text)
    except trust.QuestionError as exc:
        st.warning(t("trust.question." + exc.code, **exc.values))
        return None


def output_part(request: str) -> None:
    st.markdown(t(P + "output.title"))
    system = st.text_input(t(P + "system"), key=P + "system", persist_state="session").strip() or None
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "generate"), key=P + "generate", disabled=running, icon=":material/smart_toy:"):
        st.session_state[P + "job"] = (
            shared_runner().submit("trust.guard", trust.guard_job, request, system, MAX_ANSWER_TOKENS).id
        )
        st.session_state.pop(P + "answer", None)
        st.rerun()

    def finish(done) -> None:
        if done is not None and done.result is not None:
            st.session_state[P + "answer"], done.result = done.result, None

    live_panel(P, finish, lambda j, ev: (j.progress or 0.0, t(P + "generating")), lambda j, ev: None)
    answer = st.session_state.get(P + "answer")
    if answer is not None:
        st.caption(t(P + "answered", question=answer.question))
        if answer.output is None:
            st.info(t(P + "never_asked"))
        else:
            st.markdown(t(P + "model_said"))
            st.code(answer.answer or "", language=None, wrap_lines=True)
            pipeline_table(answer.output)
        st.markdown(t(P + "user_gets"))
        st.code(answer.shown, language=None, wrap_lines=True)
    pasted = st.text_area(t(P + "pasted"), key=P + "pasted", height=80, persist_state="session")
    if pasted.strip():
        with queue_status():
            result = trust.check(pasted, "output", system_prompt=system, prompt=request)
        pipeline_table(result)


def measured_part() -> None:
    st.subheader(t(P + "measured.title"))
    with st.spinner(t(P + "measuring")), queue_status():
        report = trust.evaluate_guard()
    c = st.columns(3)
    c[0].metric(t(P + "fpr"), f"{report.guard_fpr:.1%}", help=t(P + "fpr.help", n=report.n_benign))
    c[1].metric(t(P + "recall"), f"{report.recall:.1%}", help=t(P + "recall.help", n=report.n_heldout))
    c[2].metric(t(P + "threshold"), f"{report.similarity_threshold:.3f}")
    st.caption(t(P + "threshold.how", pct=f"{trust.SIMILARITY_MAX_FPR:.0%}"))
    rows = [
        {
            t(P + "col.check"): t(P + "pipeline") if r.name == "pipeline" else _check_name(r.name),
            t(P + "fpr"): t(P + "verdict.unavailable") if r.fpr is None else f"{r.fpr:.1%}",
            t(P + "recall"): t(P + "verdict.unavailable") if r.recall is None else f"{r.recall:.1%}",
        }
        for r in report.per_check
    ]
    st.dataframe(rows, hide_index=True, key=P + "rates")
    st.markdown(t(P + "false_positives", n=len(report.flagged_benign)))
    st.dataframe(
        [
            {
                t(P + "col.id"): item.id,
                t(P + "col.category"): t(P + "category." + item.category),
                t(P + "col.request"): item.text,
                t(P + "col.check"): _check_name(by),
            }
            for item, by in report.flagged_benign
        ],
        hide_index=True,
        key=P + "false_positives",
    )
    with st.expander(t(P + "missed", n=len(report.missed_heldout))):
        st.dataframe(
            [
                {
                    t(P + "col.id"): item.id,
                    t(P + "col.category"): t(P + "category." + item.category),
                    t(P + "col.request"): item.text,
                }
                for item in report.missed_heldout
            ],
            hide_index=True,
            key=P + "missed_table",
        )
    st.caption(t(P + "honest"))


def render() -> None:
    st.markdown(t(P + "intro"))
    request = request_part()
    if request is not None:
        st.markdown(t(P + "input.title"))
        with queue_status():
            result = trust.check(request, "input")
        pipeline_table(result)
        output_part(request)
    measured_part()
