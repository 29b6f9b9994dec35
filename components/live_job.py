"""The live panel of a page's training job (the Alignment page's SFT and DPO, the Architectures page's
runs): its progress, queue wait, stop button, failure, and whatever the tab draws from its events,
refreshed every second while the job runs.

When the job ends, the tab's `finish` takes its result once (components.job_status.newly_finished)
and the whole page reruns, so the comparison below and the arena see the new run.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from backends.core.jobs import FAILED, Job, shared_runner
from components.i18n import t
from components.job_status import newly_finished

# (the job, its events so far) -> (progress fraction, progress text) while it runs
Progress = Callable[[Job, list], tuple[float, str]]
# (the job, its events so far) -> None: the tab's metrics and charts, drawn while it runs and after
Draw = Callable[[Job, list], None]


def live_panel(prefix: str, finish: Callable[[Job], None], progress: Progress, draw: Draw) -> None:
    """The job whose id is in st.session_state[prefix + "job"], followed live (widget keys under `prefix`)."""
    job = shared_runner().get(st.session_state.get(prefix + "job"))
    if job is None:
        return

    @st.fragment(run_every=1.0 if not job.done else None)
    def panel():
        current = shared_runner().get(st.session_state.get(prefix + "job"))
        if newly_finished(prefix + "job") is not None:
            finish(current)
            st.rerun(scope="app")
        events = current.events_since(0)
        if not current.done:
            fraction, text = progress(current, events)
            st.progress(min(max(fraction, 0.0), 1.0), text=text)
            if current.queued is not None:
                st.caption(t("app.queue_wait", n=current.queued[0] + 1, s=f"{current.queued[1]:.0f}"))
            if st.button(t("lora.train.stop"), key=prefix + "stop", icon=":material/stop:"):
                current.stop()
        elif current.status == FAILED:
            st.error(t("lora.train.failed", error=current.error))
        draw(current, events)

    panel()
