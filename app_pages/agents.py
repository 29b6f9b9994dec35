"""Agents: a tool-calling loop on the in-app model with every step shown, memory, prompt injection."""

import streamlit as st

from backends.models.registry import find_spec
from components.agents.injection_view import injection_tab
from components.agents.memory_view import memory_tab
from components.agents.run_view import run_tab
from components.i18n import t
from components.model_picker import load_or_explain

P = "agents."
MODEL = "smollm2-135m-instruct"  # the offline chat model, trained on SmolLM2's tool-call format

st.title(t("page.agents.title"))
st.markdown(t("agents.intro"))
loaded = load_or_explain(MODEL)
if loaded is None:
    st.stop()
spec = find_spec(MODEL)
st.caption(t("agents.model_note", model=spec.hub_id if spec else MODEL))
device = loaded.key.device

tabs = st.tabs(
    [t("agents.tab.run"), t("agents.tab.memory"), t("agents.tab.injection")],
    key=P + "tab",
    on_change="rerun",
)
renders = (lambda: run_tab(loaded, device), lambda: memory_tab(loaded), lambda: injection_tab(loaded))
for tab, render in zip(tabs, renders):
    if tab.open:
        with tab:
            render()
