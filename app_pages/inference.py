"""Inference: the mechanics of fast inference on the real offline model: what the KV cache holds, where a
decode step's time goes, speculative decoding, batching, choosing tokens yourself, and a server's metrics."""

import streamlit as st

from components.i18n import t
from components.inference import batching, memory, sampler, server, speculative, speed

P = "inference."
PARTS = {
    "memory": memory,
    "speed": speed,
    "speculative": speculative,
    "batching": batching,
    "sampler": sampler,
    "server": server,
}

st.title(t("page.inference.title"))
st.markdown(t("inference.intro"))

tabs = st.tabs([t(P + "tab." + key) for key in PARTS], key=P + "tab", on_change="rerun")
for tab, part in zip(tabs, PARTS.values()):
    if tab.open:
        with tab:
            part.render()
