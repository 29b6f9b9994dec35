"""Sidebar shared by every page: language, device, present mode, the warm-up, and the loaded-models panel."""

from __future__ import annotations

import time

import streamlit as st

from backends.core import warmup
from backends.core.device import available_devices, resolve_device
from backends.models.cache import shared_cache
from components import url_state
from components.builtin_text import builtin_css
from components.i18n import LANGS, STATE_KEY, t

DEVICE_KEY = "app.device_choice"


def current_device() -> str:
    """The device this session's pages load models on ("auto" resolved once per choice)."""
    return resolve_device(st.session_state.get(DEVICE_KEY, "auto"))


PRESENT_KEY = "app.present"
# Present mode: larger text for a projector (charts follow the page width already).
PRESENT_CSS = """<style>
html, .stMarkdown p, .stMarkdown li, .stCaption, label, input, textarea, button { font-size: 1.3rem !important; }
h1 { font-size: 3rem !important; } h2 { font-size: 2.3rem !important; } h3 { font-size: 1.8rem !important; }
</style>"""


def language_picker() -> None:
    """The UI language; `?lang=zh` in a link opens the app in Chinese."""
    url_state.bind(STATE_KEY, "lang", default="en", valid=lambda v: v in LANGS)
    st.sidebar.radio(
        "Language / 语言",
        options=list(LANGS),
        format_func=LANGS.get,
        key=STATE_KEY,
        horizontal=True,
        persist_state="session",
    )


def translate_builtin_widgets() -> None:
    """Streamlit's own texts in the UI language: the uploader's button and line, Stop, the menu
    (components/builtin_text.py; a style rule, it takes no place on the page)."""
    css = builtin_css()
    if css:
        st.html(css)


def present_toggle() -> None:
    """Larger text for a projector; `?present=1` in a link turns it on."""
    url_state.bind(PRESENT_KEY, "present", default=False, parse=url_state.parse_bool, dump=url_state.dump_bool)
    if st.sidebar.toggle(
        t("sidebar.present"), key=PRESENT_KEY, help=t("sidebar.present_help"), persist_state="session"
    ):
        st.html(PRESENT_CSS)


def device_picker() -> None:
    st.sidebar.selectbox(
        t("sidebar.device"),
        options=["auto", *available_devices()],
        key=DEVICE_KEY,
        help=t("sidebar.device_help"),
        persist_state="session",
    )
    st.sidebar.caption(t("sidebar.device_resolved", device=current_device()))


# Steps whose label is a word to translate; the others are named by a model's own name.
WARM_WORDS = ("imports", "tokenizers", "conse")


def _warm_label(step: warmup.Step) -> str:
    return t(f"app.warm.step.{step.key}") if step.key in WARM_WORDS else step.label


def warmup_status() -> None:
    """What the launcher (scripts/launch.py) is still loading in the background, refreshed every
    second while it lasts; then one line. Nothing under a plain `streamlit run`, which warms nothing."""
    if not any(s.key != "imports" for s in warmup.progress()):
        return
    warming = warmup.warming()

    @st.fragment(run_every=1.0 if warming else None)
    def status() -> None:
        steps = [s for s in warmup.progress() if s.key != "imports"]
        ready = sum(s.state == warmup.DONE for s in steps)
        failed = [s for s in steps if s.state == warmup.FAILED]
        current = next((s for s in steps if s.state == warmup.RUNNING), None)
        if warmup.warming():
            what = _warm_label(current) if current else "…"
            secs = f"{current.seconds():.0f}" if current else "0"
            text = t("app.warm.running", what=what, s=secs, done=ready, total=len(steps))
            st.progress(ready / len(steps), text=text)
            st.caption(t("app.warm.help"))
            return
        if warming:  # it ended since this page was drawn: one full run stops the polling
            st.rerun(scope="app")
        started = min((s.started for s in steps if s.started is not None), default=time.monotonic())
        ended = max((s.ended for s in steps if s.ended is not None), default=started)
        st.caption(t("app.warm.ready", s=f"{ended - started:.0f}"))
        for step in failed:
            st.caption(t("app.warm.failed", what=_warm_label(step), error=step.error))

    with st.sidebar:
        status()


def loaded_models_panel() -> None:
    cache = shared_cache()
    entries = cache.entries()
    with st.sidebar.expander(t("sidebar.loaded", n=len(entries)), expanded=bool(entries)):
        if not entries:
            st.caption(t("sidebar.loaded_none"))
        for device in sorted({e.key.device for e in entries}):
            st.markdown(f"**{device}** · {cache.used_bytes(device) / 2**20:,.0f} MiB")
            for entry in (e for e in entries if e.key.device == device):
                k = entry.key
                variant = "" if k.variant == "default" else f" · `{k.variant}`"
                size = (
                    t("sidebar.shared_weights", variant=entry.shares_weights_with.variant)
                    if entry.shares_weights_with
                    else f"{entry.nbytes / 2**20:,.0f} MiB"
                )
                st.markdown(f"`{k.model}`  \n{k.dtype}{variant} · {size}")
                unload_id = f"app.unload.{k.model}.{k.device}.{k.dtype}.{k.variant}"
                if st.button(t("sidebar.unload"), key=unload_id, icon=":material/eject:", type="tertiary"):
                    cache.unload(k)
                    st.rerun()
        # Models this session made for itself (quantized variants it kept): its own memory, not shared.
        own = st.session_state.get("quantization.kept", {})
        if own:
            st.markdown(t("sidebar.session_models"))
            for item in own.values():
                st.markdown(f"{item['label']} · {item['bytes'] / 2**20:,.0f} MiB")
