"""One click sets a page up for an experiment: its session-state keys, as the page's own widgets read them.

Each function is a button callback (it runs before the page is drawn, so the widgets take the values)
and takes the experiment from backends.experiments; the values come from `experiment.params`, the
same ones the measurement uses, so the page shows what the panel measured. The experiment's own
text (exp.<page>.<id>.then) says what to press next.
"""

from __future__ import annotations

import streamlit as st

from backends import decoding as dec
from backends.experiments import Experiment, Observation
from backends.lora import LoraSettings
from components.i18n import t


def _clear(prefix: str) -> None:
    for key in [k for k in st.session_state if str(k).startswith(prefix)]:
        del st.session_state[key]


def _set_widgets(prefix: str, values: dict) -> None:
    """Give the settings widgets (`<prefix><name>`) the new values through their own keys. Deleting the
    keys is not enough in a browser: a widget with persist_state keeps the value it last showed (the
    page drew the old setting again), while AppTest took the default; setting the key works in both."""
    for name, value in values.items():
        st.session_state[prefix + name] = value


def decoding(exp: Experiment) -> None:
    """The page's columns become the experiment's columns (named by their settings), ready to run."""
    p = exp.params
    _clear("dec.col.")
    st.session_state.pop("dec.results", None)
    # fresh ids: a browser keeps a persisted widget's last value under its old key (see _set_widgets)
    first = int(st.session_state.get("dec.next_id", 0))
    columns = []
    for i, (name, fields) in enumerate(zip(p["names"], p["columns"]), first):
        columns.append({"id": i, "name": name, "config": dec.DecodingConfig(**fields)})
    st.session_state["dec.columns"], st.session_state["dec.next_id"] = columns, first + len(columns)
    st.session_state["decoding.model"] = p["model"]
    st.session_state["dec.prompt"], st.session_state["dec.chat"] = p["prompt"], True
    st.session_state["dec.max_new"] = max(c.get("max_new_tokens", 24) for c in p["columns"])
    st.session_state["dec.seed"] = next((c["seed"] for c in p["columns"] if "seed" in c), 42)
    st.session_state["dec.tab"] = t("dec.tab.compare")


def tokenizers(exp: Experiment) -> None:
    st.session_state["tok.text"] = exp.params["text"]
    st.session_state["tok.chosen"] = list(exp.params["chosen"])
    st.session_state["tok.show_ids"] = exp.id == "space"
    st.session_state["tok.tab"] = t("tok.tab.compare")


def attention(exp: Experiment, observed: Observation | None = None) -> None:
    """Model and text; with a measured observation that names a head, that head in the head view."""
    st.session_state["attention.model"] = exp.params["model"]
    st.session_state["attention.text"] = exp.params["text"]
    st.session_state["attention.use_pair"] = False
    if observed is not None and "layer" in observed.values:
        st.session_state["attention.layer"] = int(observed.values["layer"])
        st.session_state["attention.head"] = int(observed.values["head"])
        st.session_state["attention.tab"] = t("attention.tab.head")
    else:
        st.session_state["attention.layer"] = st.session_state["attention.head"] = 0
        st.session_state["attention.tab"] = t("attention.tab.head" if exp.id == "causal" else "attention.tab.summary")


def lora(exp: Experiment) -> None:
    """The settings the Configure tab's plan then counts (its widgets are drawn afresh from `lora.cfg`)."""
    p = exp.params
    cfg = st.session_state.setdefault("lora.cfg", {})
    cfg["rank"] = int(p["ranks"][1] if "ranks" in p else p.get("rank", 8))
    cfg["target_modules"] = list(p["targets"][1] if "targets" in p else LoraSettings().target_modules)
    _set_widgets("lora.w.", {k: cfg[k] for k in ("rank", "target_modules")})
    st.session_state["lora.model"] = p["model"]
    st.session_state["lora.tab"] = t("lora.tab.config")


def rag(exp: Experiment) -> None:
    p = exp.params
    if exp.id == "with_without":
        st.session_state["rag.compare"] = True
        st.session_state["rag.top_k"] = int(p["k"])
        st.session_state["rag.max_new"] = int(p["max_new"])
        st.session_state["rag.method"] = "hybrid"
        st.session_state["rag.tab"] = t("rag.tab.chat")
    else:
        st.session_state["rag.glass_q"] = p["question"]
        st.session_state["rag.tab"] = t("rag.tab.retrieval")


def scratch_gpt(exp: Experiment) -> None:
    """The corpus and the baby preset (n_embd 256 for the width experiment), drawn afresh from `scratch_gpt.cfg`."""
    from components.scratch_gpt.config import settings_dict

    cfg = settings_dict()
    cfg["n_embd"] = int(exp.params["widths"][1]) if "widths" in exp.params else 128
    _set_widgets("scratch_gpt.w.", {"n_embd": cfg["n_embd"]})
    st.session_state["scratch_gpt.corpus"] = exp.params.get("corpus", "shakespeare")
    st.session_state["scratch_gpt.tab"] = t("scratch_gpt.tab.train")


def quantization(exp: Experiment) -> None:
    """The experiment's model in the picker (the GPT trained here: trained and exported first if it is not
    on disk yet, about a minute) and its variants selected, on the benchmark tab."""
    from backends.quantization import DEMO_GPT_NAME, train_demo_gpt
    from components.model_picker import add_session_model
    from components.quantization.bench import cfg as bench_cfg

    if exp.params["model"] == "real":
        folder = str(train_demo_gpt())
        add_session_model(f"scratch_gpt/{DEMO_GPT_NAME}", folder)
        st.session_state["quantization.model"] = folder
    else:
        st.session_state["quantization.model"] = "smollm2-135m-instruct"
    cfg = bench_cfg()
    cfg["variants"] = list(exp.params["variants"])
    cfg["keep"] = []
    _set_widgets("quantization.w.", {"variants": cfg["variants"], "keep": []})
    st.session_state["quantization.tab"] = t("quantization.tab.bench")


SETUPS = {
    "scratch_gpt": scratch_gpt,
    "decoding": decoding,
    "tokenizers": tokenizers,
    "attention": attention,
    "lora": lora,
    "rag": rag,
    "quantization": quantization,
}
