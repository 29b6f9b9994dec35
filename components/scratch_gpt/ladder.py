"""The GPT-from-scratch page's ladder tab: the same budget trains each rung of models, from counting to a GPT."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backends.core.jobs import shared_runner
from backends.scratch_gpt import RUNGS, Prepared, ladder_job
from components.i18n import t
from components.job_status import newly_finished
from components.scratch_gpt.charts import ladder_figure
from components.scratch_gpt.config import settings

P = "scratch_gpt."


def ladder_tab(prepared: Prepared) -> None:
    """Start the ladder on the prepared text, follow it, and show its losses next to each other."""
    st.markdown(t("scratch_gpt.ladder.intro"))
    steps = st.number_input(
        t("scratch_gpt.ladder.steps"), 10, 5000, 300, step=50, key=P + "ladder_steps", persist_state="session"
    )
    job = shared_runner().get(st.session_state.get(P + "ladder_job"))
    if st.button(t("scratch_gpt.ladder.start"), key=P + "ladder_start", disabled=job is not None and not job.done):
        try:
            config, train = settings()
        except ValueError as exc:
            st.error(t("scratch_gpt.cfg.invalid", error=str(exc)))
            return
        job = shared_runner().submit("scratch_gpt-ladder", ladder_job, prepared, config, train, int(steps), RUNGS)
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
            st.plotly_chart(ladder_figure(done["results"]), key=P + "ladder_chart")
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            t("scratch_gpt.col.model"): t(f"scratch_gpt.rung.{r['rung']}"),
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
                    unigram=f"{prepared.unigram_loss():.3f}",
                )
            )

    ladder_panel()
