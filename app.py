"""LLM Playground entry point: sidebar, then the navigation built from the page registry."""

import streamlit as st

from backends.core.memory import tune_allocator
from backends.core.paths import ASSETS
from backends.core.warmup import imports_done, warm_imports
from components.i18n import t

FAVICON = ASSETS / "favicon.png"

# A local file: a :material/…: or emoji icon is fetched from a font or image host, which fails offline.
st.set_page_config(page_title="LLM Playground", page_icon=str(FAVICON), layout="wide")

# Fewer malloc arenas and a fixed mmap threshold: freed activations go back to the system.
tune_allocator()

# Heavy libraries are imported once, in one thread, before any page runs: several sessions
# importing transformers/peft for the first time at once broke on a cold server. The launcher
# (scripts/launch.py: `make run`, the Space) has done it before the port opened; under a plain
# `streamlit run app.py` the first sessions wait here, told why.
if not imports_done():
    with st.spinner(t("app.warm.imports"), show_time=True):
        warm_imports()

from backends.core.jobs import owned_by
from components.engine import engine_panel
from components.guard import passcode_gate, session_token, show_failure
from components.page_registry import HOME, PAGES
from components.sidebar import (
    device_picker,
    language_picker,
    loaded_models_panel,
    present_toggle,
    translate_builtin_widgets,
    warmup_status,
)

language_picker()
translate_builtin_widgets()
passcode_gate()
device_picker()
warmup_status()
present_toggle()
engine_panel()
navigation = st.navigation(
    [
        st.Page(p.path, title=t(f"page.{p.key}.title"), icon=p.icon, url_path=p.url_path, default=p is HOME)
        for p in PAGES
    ],
    expanded=True,  # every stage's page listed: past 10 pages Streamlit would hide the last behind "View more"
)
try:
    with owned_by(session_token()):  # a closed tab's training runs stop once Streamlit drops its state
        navigation.run()
except Exception as exc:  # a page's bug must not end the session; Streamlit's own stops pass
    show_failure(exc)
# After the page, so models it just loaded are listed.
loaded_models_panel()
