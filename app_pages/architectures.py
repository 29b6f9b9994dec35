"""Architectures: the three model families and a mixture of experts built from the scratch GPT's
parts and trained here, then training on several processes (DDP, FSDP) with a memory calculator."""

import streamlit as st

from components.architectures import distributed, encoder, moe, seq2seq
from components.i18n import t

P = "architectures."

st.title(t("page.architectures.title"))
st.markdown(t("architectures.intro"))
with st.expander(t("architectures.families.title")):
    st.markdown(t("architectures.families.body"))

tabs = st.tabs(
    [
        t("architectures.tab.encoder"),
        t("architectures.tab.seq2seq"),
        t("architectures.tab.moe"),
        t("architectures.tab.distributed"),
    ],
    key=P + "tab",
    on_change="rerun",
)
for tab, part in zip(tabs, (encoder, seq2seq, moe, distributed)):
    if tab.open:
        with tab:
            part.render()
