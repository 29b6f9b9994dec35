"""Alignment: instruction tuning token by token, a classroom preference arena, and DPO trained live."""

import streamlit as st

from backends.models.registry import find_spec
from components.alignment.arena import arena_tab
from components.alignment.dpo_view import absorb_finished as absorb_dpo
from components.alignment.dpo_view import dpo_tab, rl_note
from components.alignment.sft_view import ADAPTERS, sft_tab
from components.alignment.sft_view import absorb_finished as absorb_sft
from components.i18n import t
from components.model_picker import load_or_explain

P = "alignment."
MODEL = "smollm2-135m-instruct"  # the offline chat model; every step of the page trains a copy of it

st.title(t("page.alignment.title"))
st.markdown(t("alignment.intro"))
loaded = load_or_explain(MODEL)
if loaded is None:
    st.stop()
spec = find_spec(MODEL)
st.caption(t("alignment.model_note", model=spec.hub_id if spec else MODEL))

absorb_sft()
absorb_dpo()
tabs = st.tabs(
    [t("alignment.tab.sft"), t("alignment.tab.arena"), t("alignment.tab.dpo")],
    key=P + "tab",
    on_change="rerun",
)
adapters = st.session_state.setdefault(ADAPTERS, {})
for tab, render in zip(
    tabs,
    (
        lambda: sft_tab(loaded, MODEL),
        lambda: arena_tab(loaded, dict(adapters)),
        lambda: dpo_tab(loaded, MODEL),
    ),
):
    if tab.open:
        with tab:
            render()
rl_note()
