"""The GPT-from-scratch page's ladder tab: from a table of counts to a GPT, each scored on every held-out character."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backends.core.jobs import shared_runner
from backends.scratch_gpt import RUNGS, Prepared, ladder_defaults, ladder_job
from components.i18n import t
from components.job_status import newly_finished
from components.scratch_gpt.charts import count_table_figure, ladder_figure
from components.scratch_gpt.config import settings

P = "scratch_gpt."


def how(result: dict) -> str:
    """How the rung got its numbers: counted (with its add-k) or trained (with its peak learning rate)."""
    if result["rung"] == "bigram":
        return t("scratch_gpt.ladder.counted", k=f"{result['k']:.3g}")
    return t("scratch_gpt.ladder.trained", lr=f"{result['lr']:g}")


def count_table(bigram: dict) -> None:
    """The bigram rung shown as what it is: a table of counts."""
    st.markdown(
        t(
            "scratch_gpt.ladder.table_intro",
            pairs=f"{bigram['pairs']:,}",
            seen=f"{bigram['seen']:,}",
            cells=f"{bigram['cells']:,}",
            n=len(bigram["top"]),
            k=f"{bigram['k']:.3g}",
        )
    )
    st.plotly_chart(count_table_figure(bigram["top"], bigram["table"]), key=P + "ladder_counts")


def ladder_tab(prepared: Prepared) -> None:
    """Start the ladder on the prepared text, follow it, and show its losses next to each other."""
    st.markdown(t("scratch_gpt.ladder.intro"))
    default_steps, default_lr = ladder_defaults(prepared)
    c1, c2 = st.columns(2)
    steps = c1.number_input(  # per text: the defaults depend on its size
        t("scratch_gpt.ladder.steps"),
        10,
        5000,
        default_steps,
        step=50,
        key=P + "ladder_steps." + prepared.name,
        persist_state="session",
    )
    lr = c2.number_input(
        t("scratch_gpt.ladder.lr"),
        1e-5,
        1.0,
        default_lr,
        format="%.5f",
        step=1e-4,
        key=P + "ladder_lr." + prepared.name,
        persist_state="session",
    )
    job = shared_runner().get(st.session_state.get(P + "ladder_job"))
    if st.button(t("scratch_gpt.ladder.start"), key=P + "ladder_start", disabled=job is not None and not job.done):
        try:
            config, train = settings()
        except ValueError as exc:
            st.error(t("scratch_gpt.cfg.invalid", error=str(exc)))
            return
        job = shared_runner().submit(
            "scratch_gpt-ladder", ladder_job, prepared, config, train, int(steps), RUNGS, float(lr)
        )
        st.session_state[P + "ladder_job"] = job.id
        st.rerun()

    @st.fragment(run_every=1.0 if job is not None and not job.done else None)
    def ladder_panel():
        current = shared_runner().get(st.session_state.get(P + "ladder_job"))
        if current is not None and newly_finished(P + "ladder_job") is not None:
            st.session_state[P + "ladder"] = {
                "results": current.result or [],
                "corpus": prepared.name,
                "steps": int(steps),
                "val": len(prepared.val) - 1,
                "unigram": prepared.unigram_loss(),
                "error": current.error,
            }
            st.rerun(scope="app")
        if current is not None and not current.done:
            st.progress(
                current.progress or 0.0, text=current.events_since(0)[-1].message if current.events_since(0) else "…"
            )
            if st.button(t("scratch_gpt.train.stop"), key=P + "ladder_stop"):
                current.stop()
        done = st.session_state.get(P + "ladder")
        if done and done["error"]:
            st.error(t("scratch_gpt.train.failed", error=done["error"]))
        if done and done["results"]:
            st.plotly_chart(ladder_figure(done["results"], done["unigram"]), key=P + "ladder_chart")
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            t("scratch_gpt.col.model"): t(f"scratch_gpt.rung.{r['rung']}"),
                            t("scratch_gpt.col.how"): how(r),
                            t("scratch_gpt.col.params"): r["params"],
                            t("scratch_gpt.col.val"): round(r["val_loss"], 4),
                            t("scratch_gpt.col.seconds"): round(r["seconds"], 1),
                        }
                        for r in done["results"]
                    ]
                ),
                hide_index=True,
                key=P + "ladder_table",
            )
            st.caption(
                t(
                    "scratch_gpt.ladder.note",
                    steps=done["steps"],
                    corpus=done["corpus"],
                    val=f"{done['val']:,}",
                    unigram=f"{done['unigram']:.3f}",
                )
            )
            bigram = next((r for r in done["results"] if r["rung"] == "bigram"), None)
            if bigram is not None:
                count_table(bigram)

    ladder_panel()
