"""The GPT-from-scratch page's text: the chosen corpus or upload, the tokenizer, the prepared training data."""

from __future__ import annotations

import streamlit as st

from backends.scratch_gpt import SubwordTokenizer, decode_text_upload, load_corpus, prepare
from components.i18n import t

P = "scratch_gpt."


def text_source() -> tuple[str | None, str, str | None]:
    """(text, name, problem) of this session's chosen corpus."""
    source = st.session_state.get(P + "corpus", "shakespeare")
    if source != "upload":
        return load_corpus(source), source, None
    upload = st.session_state.get(P + "upload")
    if upload is None:
        return None, "upload", t("scratch_gpt.data.upload_first")
    cached = st.session_state.get(P + "decoded")
    if cached is None or cached[0] != upload.file_id:
        try:
            text, note = decode_text_upload(upload.name, upload.getvalue())
            cached = (upload.file_id, text, note, None)
        except ValueError as exc:
            cached = (upload.file_id, None, None, str(exc))
        st.session_state[P + "decoded"] = cached
    if cached[2]:
        st.caption(cached[2])
    return cached[1], upload.name, cached[3]


def subword_choices() -> dict:
    """Tokenizers this session trained on the Tokenizers page that a GPT can use (the `tokenizers` JSON ones)."""
    trained = st.session_state.get("tok.trained", {})
    return {key: r for key, r in trained.items() if r.file_name.endswith(".json")}


def chosen_tokenizer():
    """The subword tokenizer this session chose, or None for characters."""
    choice = st.session_state.get(P + "tokenizer", "char")
    found = subword_choices().get(choice)
    if found is None:
        return None
    return SubwordTokenizer(found.tok.label, found.data.decode("utf-8"))


def prepared_data(text: str, name: str, block_size: int):
    """The text cut into tokens and split for training, kept while the text, block size and tokenizer stay."""
    choice = st.session_state.get(P + "tokenizer", "char")
    key = (name, len(text), hash(text), block_size, choice)
    kept = st.session_state.get(P + "prepared")
    if kept is None or kept[0] != key:
        kept = (key, prepare(name, text, block_size, tokenizer=chosen_tokenizer()))
        st.session_state[P + "prepared"] = kept
    return kept[1]
