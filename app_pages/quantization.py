"""Quantization benchmark: size, speed and quality of every precision of one model, measured here."""

import streamlit as st

from backends.models.registry import find_spec
from backends.quantization import describe
from backends.quantization.gguf_variant import llama_cpp_installed
from components.experiments import experiments_panel
from components.i18n import t
from components.model_picker import language_default, load_or_explain, model_picker
from components.quantization import bench as B
from components.quantization.table import variants_table
from components.quantization.teaching import how_it_works

P = "quantization."

st.title(t("page.quantization.title"))
st.markdown(t("quantization.intro"))
left, right = st.columns([1, 2])
with left:
    # In Chinese the multilingual Gemma 3 270M (its own Q4_K_M GGUF) is the default, SmolLM2 in English.
    name = model_picker(
        "quantization", kinds=("causal-lm",), default=language_default("smollm2-135m-instruct", "gemma-3-270m")
    )
loaded = load_or_explain(name) if name else None
if loaded is None:
    st.stop()
spec = find_spec(name)
hub_id = spec.hub_id if spec else name
baseline = describe(loaded)  # what the fp32 row's weights are: the embedded SmolLM2's are its Q4_1 GGUF's
with right:
    params = sum(p.numel() for p in loaded.model.parameters()) / 1e6
    st.caption(
        t(
            "quantization.model_note",
            model=hub_id,
            params=f"{params:.1f}",
            mb=f"{loaded.nbytes / 2**20:,.0f}",
            device=loaded.key.device,
        )
    )
    B.baseline_note(baseline)
    st.caption(t("quantization.copy_note"))

B.absorb_finished()
tabs = st.tabs(
    [t("quantization.tab.bench"), t("quantization.tab.how"), t("quantization.tab.earlier")],
    key=P + "tab",
    on_change="rerun",
)


def bench_tab():
    st.markdown(t("quantization.variants_here", device=loaded.key.device))
    reasons = variants_table(loaded.key.device, baseline, loaded.model)
    if not llama_cpp_installed():
        st.caption(t("quantization.llama_cpp"))
    B.settings(loaded.key.device, reasons, baseline)
    st.caption(t("quantization.text_note", text=t("quantization.text_name")))
    st.button(
        t("quantization.start"),
        key=P + "start",
        type="primary",
        icon=":material/play_arrow:",
        disabled=B.running(),
        on_click=B.start,
        args=(loaded, name),
    )
    B.status_line()
    B.live(baseline)
    B.results(hub_id)
    B.kept_panel()


def how_tab():
    st.markdown(t("quantization.how.intro"))
    how_it_works(loaded, baseline)


def earlier_tab():
    st.markdown(t("quantization.earlier.intro"))
    B.overlay_upload()


for tab, render in zip(tabs, (bench_tab, how_tab, earlier_tab)):
    if tab.open:
        with tab:
            render()

experiments_panel("quantization", loaded)
