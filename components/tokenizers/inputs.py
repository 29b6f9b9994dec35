"""The tokenizer page's Chat template and Batch tabs: the tokens a model is actually given."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backends.models.registry import ModelNotAvailable
from backends.tokenizers import tokenization as tz
from components.i18n import t
from components.option_labels import follow_language
from components.show_code import show_code
from components.token_chips import token_chips
from components.tokenizers.session import label, resolve

P = "tok."


def chat_tab() -> None:
    """A conversation through a chat template: which tokens the template adds around the messages."""
    st.markdown(t("tok.chat_intro"))
    with_template = [s.key for s in tz.TOKENIZERS if s.chat_template] + st.session_state[P + "extra"]
    key = st.selectbox(
        t("tok.chat_tokenizer"), with_template, key=P + "chat_tok", format_func=label, persist_state="session"
    )
    default = pd.DataFrame(
        [
            {"role": "system", "content": t("tok.chat_default_system")},
            {"role": "user", "content": t("tok.chat_default_user")},
            {"role": "assistant", "content": t("tok.chat_default_assistant")},
        ]
    )
    edited = st.data_editor(
        default,
        num_rows="dynamic",
        key=P + "chat_messages",
        hide_index=True,
        column_config={
            "role": st.column_config.SelectboxColumn(options=["system", "user", "assistant"], required=True)
        },
    )
    prompt = st.toggle(t("tok.chat_generation_prompt"), value=True, key=P + "chat_prompt", persist_state="session")
    messages = [
        {"role": str(r["role"]), "content": str(r["content"] or "")}
        for _, r in edited.iterrows()
        if isinstance(r["role"], str)
    ]
    try:
        chat = tz.chat_template_tokens(key, messages, add_generation_prompt=prompt)
    except (ModelNotAvailable, ValueError) as exc:
        st.warning(str(exc))
        return
    added = sum(chat.added)
    st.caption(t("tok.chat_added", added=added, total=len(chat.ids)))
    strings = tz.token_strings(key, chat.ids)
    token_chips(
        strings,
        chat.ids,
        chat.added,
        palette=True,
        max_tokens=2000,
        details=["added by the template" if a else "message text" for a in chat.added],
    )
    st.code(chat.rendered, language=None, wrap_lines=True)
    show_code(tz.chat_template_tokens)


def batch_tab(options: list[str]) -> None:
    """Several texts as one padded batch: input_ids and attention_mask, padding side and truncation."""
    st.markdown(t("tok.batch_intro"))
    lines = st.text_area(
        t("tok.batch_texts"), t("tok.batch_default"), key=P + "batch_texts", height=110, persist_state="session"
    )
    b1, b2, b3 = st.columns(3)
    key = b1.selectbox(
        t("tok.batch_tokenizer"), options, key=P + "batch_tok", format_func=label, persist_state="session"
    )
    side = b2.radio(
        t("tok.padding_side"),
        ["right", "left"],
        horizontal=True,
        key=follow_language(P + "batch_side"),
        format_func=lambda s: t(f"tok.side.{s}"),
        persist_state="session",
    )
    cut = b3.number_input(
        t("tok.truncation"), 0, 512, 0, key=P + "batch_cut", help=t("tok.truncation_help"), persist_state="session"
    )
    texts = [line for line in lines.splitlines() if line.strip()]
    if not texts:
        st.info(t("tok.batch_empty"))
        return
    try:
        batch = tz.batch_encode(resolve(key), texts, padding_side=side, truncation_max=cut or None)
    except (ModelNotAvailable, ValueError) as exc:
        st.warning(str(exc))
        return
    if batch.pad_note:  # the tokenizer has no padding token of its own: say which one stands in
        st.caption(t("tok.pad_standin", name=label(key), pad=repr(batch.pad_token)))
    st.caption(
        t(
            "tok.batch_shape",
            rows=len(batch.ids),
            width=len(batch.ids[0]),
            pad=batch.pad_token,
            pad_id=batch.pad_id,
            cut=sum(batch.truncated),
        )
    )
    names = [f"{i}: {x[:24]}" for i, x in enumerate(texts)]
    ids = pd.DataFrame(batch.ids, index=names)
    mask = pd.DataFrame(batch.attention_mask, index=names)
    grey = mask.replace({0: "background-color: #e6e6e6; color: #999", 1: ""})
    st.markdown("**input_ids**")
    st.dataframe(ids.style.apply(lambda _: grey, axis=None), key=P + "batch_ids")
    st.markdown("**attention_mask**")
    st.dataframe(mask.style.apply(lambda _: grey, axis=None), key=P + "batch_mask")
