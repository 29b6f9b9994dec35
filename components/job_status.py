"""A background job's progress in the page (backends/core/jobs.py does the work off the UI thread)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from backends.core.jobs import Job, shared_runner
from components.i18n import t


def newly_finished(state_key: str) -> Job | None:
    """The job whose id is in st.session_state[state_key], the first time this session sees it ended; else None.

    Lets a page take a job's result exactly once, whichever tab or fragment notices the end first.
    """
    job = shared_runner().get(st.session_state.get(state_key))
    if job is None or not job.done or st.session_state.get(state_key + ".taken") == job.id:
        return None
    st.session_state[state_key + ".taken"] = job.id
    return job


def job_status(
    state_key: str, running_text: Callable[[Job], str], render_done: Callable[[Job], None], interval: float = 0.5
) -> None:
    """Show the job whose id is in st.session_state[state_key].

    Polls (a fragment rerun every `interval` s) only while the job runs; when it ends, one
    full rerun lets everything else on the page see the result.
    """
    job = shared_runner().get(st.session_state.get(state_key))
    running = job is not None and not job.done

    @st.fragment(run_every=interval if running else None)
    def status():
        current = shared_runner().get(st.session_state.get(state_key))
        if current is None:
            return
        if not current.done:
            st.progress(current.progress or 0.0, text=running_text(current))
            if current.queued is not None:
                st.caption(t("app.queue_wait", n=current.queued[0] + 1, s=f"{current.queued[1]:.0f}"))
            return
        if st.session_state.get(state_key + ".shown") != current.id:
            st.session_state[state_key + ".shown"] = current.id
            st.rerun(scope="app")
        render_done(current)

    status()
