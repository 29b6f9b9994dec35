"""Tokenizer explorer: many tokenizers side by side, chat templates, batches, and train your own."""

import json
from functools import partial
from pathlib import Path

import streamlit as st

from backends.models.registry import ModelNotAvailable
from backends.tokenizers import tokenization as tz
from components.builtin_text import file_uploader
from components.experiments import experiments_panel
from components.i18n import t
from components.option_labels import follow_language
from components.tokenizers.compare import compare_tab
from components.tokenizers.inputs import batch_tab, chat_tab
from components.tokenizers.session import UPLOAD_MAX_MB, label, trained
from components.tokenizers.train import train_tab

P = "tok."
SAMPLES = json.loads(
    (Path(__file__).resolve().parent.parent / "assets/samples/tokenizer_texts.json").read_text("utf-8")
)
DEFAULT = ["gpt2", "cl100k_base", "o200k_base", "qwen3", "bert-wordpiece"]
OFFLINE = [s.key for s in tz.TOKENIZERS]
URL_TEXT_MAX = 2000  # longer texts are not put in the share link


# The text and the chosen tokenizers come from the link on a session's first run.
if P + "text" not in st.session_state:
    query = st.query_params
    st.session_state[P + "text"] = query.get("text", SAMPLES["mixed"])
    from_link = [k.strip() for k in query.get("tok", "").split(",") if k.strip()]
    st.session_state[P + "extra"] = [k for k in from_link if k not in OFFLINE]
    st.session_state[P + "chosen"] = from_link or DEFAULT


def load_sample():
    name = st.session_state[P + "sample"]
    if name in SAMPLES:
        st.session_state[P + "text"] = SAMPLES[name]


def load_upload():
    upload = st.session_state.get(P + "upload")
    st.session_state[P + "upload_note"] = None
    if upload is None:
        return
    if upload.size > UPLOAD_MAX_MB * 2**20:
        st.session_state[P + "upload_note"] = (
            "error",
            t("tok.upload_too_big", mb=UPLOAD_MAX_MB, size=f"{upload.size / 2**20:.1f}"),
        )
        return
    text, warning = tz.decode_upload(upload.getvalue())
    st.session_state[P + "text"] = text
    if warning:
        st.session_state[P + "upload_note"] = ("warning", warning)


def add_hub_tokenizer():
    name = st.session_state.get(P + "hub_id", "").strip()
    if not name:
        return
    try:
        tz.get_tokenizer(name)
    except (ModelNotAvailable, ValueError, OSError) as exc:
        st.session_state[P + "hub_error"] = str(exc)
        return
    st.session_state[P + "hub_error"] = None
    if name not in st.session_state[P + "extra"]:
        st.session_state[P + "extra"].append(name)
    if name not in st.session_state[P + "chosen"]:
        st.session_state[P + "chosen"] = [*st.session_state[P + "chosen"], name]


st.title(t("page.tokenizers.title"))
st.markdown(t("tok.intro"))

c1, c2 = st.columns([1, 1])
c1.selectbox(
    t("tok.sample"),
    ["", *SAMPLES],
    key=follow_language(P + "sample"),
    on_change=load_sample,
    format_func=lambda s: t(f"tok.sample.{s}") if s else t("tok.sample_pick"),
    persist_state="session",
)
file_uploader(
    t("tok.upload"),
    where=c2,
    type=["txt", "md", "py", "json", "csv"],
    key=P + "upload",
    max_upload_size=UPLOAD_MAX_MB,
    on_change=load_upload,
    help=t("tok.upload_help", mb=UPLOAD_MAX_MB),
)
note = st.session_state.get(P + "upload_note")
if note:
    getattr(st, note[0])(note[1])
text = st.text_area(t("tok.text"), key=P + "text", height=140, persist_state="session")

options = [*OFFLINE, *st.session_state[P + "extra"], *trained()]
chosen = st.multiselect(t("tok.choose"), options, key=P + "chosen", format_func=label, persist_state="session")
with st.expander(t("tok.add_hub")):
    st.text_input(
        t("tok.hub_id"),
        key=P + "hub_id",
        placeholder="Qwen/Qwen2.5-0.5B-Instruct",
        on_change=add_hub_tokenizer,
        persist_state="session",
    )
    if st.session_state.get(P + "hub_error"):
        st.error(st.session_state[P + "hub_error"])

# Keep the comparison shareable: the link reopens the same text and tokenizers.
shareable = [k for k in chosen if k not in trained()]
st.query_params["tok"] = ",".join(shareable)
if len(text) <= URL_TEXT_MAX:
    st.query_params["text"] = text
else:
    st.query_params.pop("text", None)
    st.caption(t("tok.link_no_text", n=URL_TEXT_MAX))

tabs = st.tabs(
    [t("tok.tab.compare"), t("tok.tab.chat"), t("tok.tab.batch"), t("tok.tab.train")], key=P + "tab", on_change="rerun"
)
views = (partial(compare_tab, text, chosen), chat_tab, partial(batch_tab, options), partial(train_tab, text))
for tab, render in zip(tabs, views):
    if tab.open:
        with tab:
            render()

experiments_panel("tokenizers")
