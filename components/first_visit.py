"""Home's first-visit tip: where to start for a learner who arrives with no plan, along the learning map.

Shown once per session until dismissed (the choice lives in the session state, "exp.home.tip_dismissed").
"""

from __future__ import annotations

import streamlit as st

from components.i18n import t
from components.page_registry import TOPICS

DISMISSED = "exp.home.tip_dismissed"
FIRST_PAGE = "tokenizers"  # stage 2 of the map: the first page that needs no training run


def dismiss() -> None:
    st.session_state[DISMISSED] = True


def first_visit_tip() -> None:
    if st.session_state.get(DISMISSED):
        return
    first = next((p for p in TOPICS if p.key == FIRST_PAGE), None)
    with st.container(border=True, key="exp.home.tip"):
        st.markdown(f"**{t('exp.home.tip.title')}**")
        st.markdown(t("exp.home.tip.body"))
        c1, c2 = st.columns([2, 1])
        if first is not None:
            c1.page_link(first.path, label=t("exp.home.tip.start"), icon=first.icon)
        c2.button(t("exp.home.tip.dismiss"), key="exp.home.tip_dismiss", on_click=dismiss)
