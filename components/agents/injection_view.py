"""The Injection tab: a poisoned search result under each defence, and the measured rates."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from backends import agents as A
from backends.core.jobs import shared_runner
from components.guard import queue_status
from components.i18n import t
from components.job_status import job_status

P = "agents.inj."
RUNS = P + "runs"
JOB = P + "job"


def _rates_job(ctx, loaded, items):
    rows = []
    for i, item in enumerate(items):
        ctx.check_stop()
        ctx.report(i / len(items), item["id"])
        rows.append(A.injection_rates(loaded, [item]))
    n = len(rows)
    keys = ("undefended", "defended", *(f"per_defence.{d}" for d in A.DEFENCES))

    def get(r, k):
        return r["per_defence"][k.split(".")[1]] if "." in k else r[k]

    return {k: sum(get(r, k) for r in rows) / n for k in keys} | {"n": n, "rows": [r["rows"][0] for r in rows]}


def _config_label(defences) -> str:
    if tuple(defences) == tuple(A.DEFENCES):
        return t(P + "all")
    return " + ".join(t(P + "defence." + d) for d in defences) if defences else t(P + "undefended")


def _next_text(step) -> str:
    if step is None:
        return "—"
    return f"{step.name}({json.dumps(step.arguments, ensure_ascii=False)})" if step.is_call else step.content


def one_document(loaded, items) -> None:
    item_id = st.selectbox(
        t(P + "pick"),
        [i["id"] for i in items],
        format_func=lambda i: f"{i}: “{next(x['question'] for x in items if x['id'] == i)}”",
        key=P + "item",
        persist_state="session",
    )
    item = next(x for x in items if x["id"] == item_id)
    st.markdown(t(P + "document"))
    st.code(item["document"], language="text")
    st.caption(t(P + "target", tool=item["target_tool"], payload=item.get("payload", "")))
    st.caption(t(P + "style." + item.get("style", "instruction")))
    if st.button(t(P + "run"), key=P + "run"):
        with queue_status(), st.spinner(t("agents.running")):
            base = A.run_injection(loaded, item)
            runs = [base]
            for d in A.DEFENCES:  # confirm changes no generation: the undefended step, declined
                runs.append(A.as_confirmed(base, item) if d == "confirm" else A.run_injection(loaded, item, (d,)))
            runs.append(A.run_injection(loaded, item, A.DEFENCES))
        st.session_state[RUNS] = (item_id, runs)
    done = st.session_state.get(RUNS)
    if done and done[0] == item_id:
        rows = [
            {
                t(P + "col.config"): _config_label(r.defences),
                t(P + "col.call"): _next_text(r.next_step),
                t(P + "col.code"): t("agents.code." + r.next_step.code) if r.next_step else "—",
                t(P + "col.success"): t(P + "how." + r.how) if r.success else t(P + "no"),
            }
            for r in done[1]
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)


def rates(loaded, items) -> None:
    st.subheader(t(P + "rates.title"))
    st.caption(t(P + "rates.note", n=len(items)))
    n = st.number_input(t(P + "rates.n"), 1, len(items), len(items), key=P + "rates_n", persist_state="session")
    if st.button(t(P + "rates.run"), key=P + "rates.run"):
        job = shared_runner().submit("agents.injection", _rates_job, loaded, items[: int(n)])
        st.session_state[JOB] = job.id

    def done(job):
        if job.error:
            st.error(str(job.error))
            return
        r = job.result
        table = pd.DataFrame(
            [
                {t(P + "col.config"): t(P + "undefended"), t(P + "col.rate"): f"{r['undefended']:.0%}"},
                *[
                    {t(P + "col.config"): t(P + "defence." + d), t(P + "col.rate"): f"{r['per_defence.' + d]:.0%}"}
                    for d in A.DEFENCES
                ],
                {t(P + "col.config"): t(P + "all"), t(P + "col.rate"): f"{r['defended']:.0%}"},
            ]
        )
        st.caption(t(P + "rates.over", n=r["n"]))
        st.dataframe(table, hide_index=True)

    job_status(JOB, lambda j: t(P + "rates.running", p=f"{(j.progress or 0):.0%}"), done)


def injection_tab(loaded) -> None:
    st.markdown(t(P + "intro"))
    items = A.shipped_injections()["items"]
    one_document(loaded, items)
    rates(loaded, items)
