"""What the chat says about language: the embedded models read English only.

SmolLM2-135M-Instruct and all-MiniLM-L6-v2 were trained on English text. A Chinese question gets
unrelated chunks (MiniLM's vectors for Chinese are close to noise) and an answer that only lists the
sources; the sample is English too. So the chat says so (in the page's language) and suggests an English
question on the English sample, and warns when a question in Chinese, Japanese or Korean meets an
English-only model.
"""

from __future__ import annotations

import re

import streamlit as st

from backends.models.registry import find_spec
from components.i18n import t

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def english_only(*names: str | None) -> list[str]:
    """The models among names that read English only (the registry's `languages == "en"`), as named there."""
    out = []
    for name in names:
        spec = find_spec(name) if name else None
        if spec is not None and spec.languages == "en":
            out.append(spec.key)
    return out


STATE = "rag.english_models"  # the English-only models of this run, for the answers' warnings


def language_note(embed_name: str | None, llm_name: str | None) -> None:
    """Above the chat: which models read English only, and an English question to start with."""
    models = english_only(embed_name, llm_name)
    st.session_state[STATE] = models
    if models:
        st.caption(t("rag.english_only", models=", ".join(models)))


def question_language_warning(question: str) -> bool:
    """Above an answer: a warning when its question is in Chinese (Japanese, Korean) and a model of the chat
    reads English only (as `language_note` found them this run); True if shown."""
    models = st.session_state.get(STATE) or []
    if models and _CJK.search(question):
        st.warning(t("rag.cjk_question", models=", ".join(models)))
        return True
    return False
