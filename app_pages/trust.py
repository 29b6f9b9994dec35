"""Trust: a real model making things up and a check catching it, answers corrected with retrieval or
withheld, guardrails in front of the model, and a red team (garak) against our own server."""

import streamlit as st

from components.i18n import t
from components.trust import correct, detect, ground, guard, redteam

P = "trust."
PARTS = {"detect": detect, "ground": ground, "correct": correct, "guard": guard, "redteam": redteam}

st.title(t("page.trust.title"))
st.markdown(t("trust.intro"))

tabs = st.tabs([t(P + "tab." + key) for key in PARTS], key=P + "tab", on_change="rerun")
for tab, part in zip(tabs, PARTS.values()):
    if tab.open:
        with tab:
            part.render()
