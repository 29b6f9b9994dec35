"""Compression beyond rounding: pruning, distillation, calibrated 4-bit, quantization-aware training and
static int8, every method measured on the quantization page's harness in one comparable table."""

import streamlit as st

from components.compression import distill, gptq, pruning, qat, table
from components.i18n import t

P = "compression."
PARTS = {"table": table, "pruning": pruning, "distill": distill, "gptq": gptq, "qat": qat}

st.title(t("page.compression.title"))
st.markdown(t("compression.intro"))

tabs = st.tabs([t(P + "tab." + key) for key in PARTS], key=P + "tab", on_change="rerun")
for tab, part in zip(tabs, PARTS.values()):
    if tab.open:
        with tab:
            part.render()
