"""What keeps a shared classroom server safe and calm: the passcode gate, the page error
boundary, per-session rate limits on heavy actions, and the compute-queue display."""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from backends.core.scheduler import waiting_context
from components.i18n import t

PASSCODE_ENV = "LLMPG_PASSCODE"
RATE_ENV = "LLMPG_RATE_PER_MIN"
DEFAULT_RATE_PER_MIN = 20
_UNLOCKED = "app.unlocked"


def passcode_gate() -> None:
    """With LLMPG_PASSCODE set (a public deployment), nothing runs until this session types it."""
    expected = os.environ.get(PASSCODE_ENV, "")
    if not expected or st.session_state.get(_UNLOCKED):
        return
    st.title("LLM Playground")
    with st.form("app.passcode_form"):
        typed = st.text_input(t("app.passcode"), type="password", key="app.passcode", persist_state="session")
        submitted = st.form_submit_button(t("app.passcode_enter"))
    if submitted:
        if hmac.compare_digest(typed.encode(), expected.encode()):
            st.session_state[_UNLOCKED] = True
            st.rerun()
        st.error(t("app.passcode_wrong"))
    st.stop()


def show_failure(exc: Exception) -> None:
    """A page met an unexpected error: a short message, a retry button, the details folded.

    The session keeps working: the sidebar, the other pages and everything loaded stay.
    `st.exception` puts the error in the page's element tree, so tests still see it.
    """
    st.error(t("app.page_failed", error=type(exc).__name__))
    st.button(t("app.retry"), key="app.retry", icon=":material/refresh:")
    with st.expander(t("app.details")):
        st.exception(exc)


def rate_limit_per_min() -> int:
    try:
        return max(1, int(os.environ.get(RATE_ENV, DEFAULT_RATE_PER_MIN)))
    except ValueError:
        return DEFAULT_RATE_PER_MIN


def allow(action: str, per_minute: int | None = None) -> bool:
    """Count one heavy action of this session; False (with a message) past the limit per minute."""
    limit = per_minute or rate_limit_per_min()
    now = time.monotonic()
    stamps = [s for s in st.session_state.get(f"app.rate.{action}", []) if now - s < 60]
    if len(stamps) >= limit:
        wait = 60 - (now - stamps[0])
        st.warning(t("app.rate_limited", n=limit, s=f"{wait:.0f}"))
        st.session_state[f"app.rate.{action}"] = stamps
        return False
    st.session_state[f"app.rate.{action}"] = [*stamps, now]
    return True


class SessionToken:
    """Lives exactly as long as this browser session's state: background jobs hold a weak
    reference to it (backends.core.jobs.owned_by) and stop once it is gone."""


def session_token() -> SessionToken:
    return st.session_state.setdefault("app.session_token", SessionToken())


def session_owner() -> str:
    """A name for this browser session in the compute queue (never shown to other sessions)."""
    return st.session_state.setdefault("app.owner", f"session-{id(st.session_state):x}")


@contextmanager
def queue_status() -> Iterator[None]:
    """While model work of this script run waits for a free compute slot, say so in the page.

    The message sits where this is entered and disappears once the step runs. A click
    on Stop or any widget interrupts the run inside the wait (Streamlit raises in the
    page's thread when the placeholder is updated), which releases the place in line.
    """
    spot = st.empty()
    shown = [False]

    def on_wait(position: int, eta_s: float) -> None:
        if position < 0:
            spot.empty()
            return
        spot.caption(t("app.queue_wait", n=position + 1, s=f"{eta_s:.0f}"))
        shown[0] = True

    with waiting_context(owner=session_owner(), on_wait=on_wait):
        try:
            yield
        finally:
            if shown[0]:
                spot.empty()
