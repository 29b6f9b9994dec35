"""This session's tokenizers on the tokenizer page: the ones it trained, their labels, what to encode with."""

from __future__ import annotations

import streamlit as st

from backends.tokenizers import tokenization as tz

P = "tok."
UPLOAD_MAX_MB = 10


def trained() -> dict:
    return st.session_state.setdefault(P + "trained", {})


def label(key: str) -> str:
    if key in trained():
        return trained()[key].tok.label
    spec = next((s for s in tz.TOKENIZERS if s.key == key), None)
    return spec.label if spec else key


def resolve(key: str):
    """Trained tokenizers live in this session only; the rest come from the backend's shared registry."""
    return trained()[key].tok if key in trained() else key
