"""Captions and visual questions with a real BLIP model named by hub id or local folder."""

from __future__ import annotations

import streamlit as st

from backends import vision as V
from components.i18n import t
from components.model_picker import load_or_explain
from components.show_code import show_code
from components.vision.inputs import cached_defaults, image_and_panel

P = "vision.blip."


def blip_panel() -> None:
    st.markdown(t("vision.blip.intro"))
    cached = cached_defaults()
    c1, c2 = st.columns(2)
    cap_name = c1.text_input(
        t("vision.blip.captioner"),
        value=cached["blip-caption"] or V.DEFAULT_CAPTIONER,
        key=P + "captioner",
        persist_state="session",
    ).strip()
    vqa_name = c2.text_input(
        t("vision.blip.vqa"), value=cached["blip-vqa"] or V.DEFAULT_VQA, key=P + "vqa", persist_state="session"
    ).strip()
    item, right = image_and_panel("blip")
    if item is None:
        return
    with right:
        captioner = load_or_explain(cap_name, variant="blip-caption") if cap_name else None
        if captioner is not None:
            if captioner.source == "hf-cache":
                st.caption(t("vision.cached.captioner", model=cap_name))
            prompt = st.text_input(
                t("vision.blip.prompt"),
                value="",
                key=P + "prompt",
                placeholder="a photography of",
                persist_state="session",
            )
            caps = V.captions(captioner, item.image, prompt)
            st.dataframe(
                {
                    t("vision.blip.strategy"): [t(f"vision.blip.strategy.{c.strategy}") for c in caps],
                    t("vision.blip.caption"): [c.text for c in caps],
                },
                hide_index=True,
                key=P + "captions",
            )
        elif not cap_name:
            st.warning(t("vision.blip.empty"))
        vqa = load_or_explain(vqa_name, variant="blip-vqa") if vqa_name else None
        if vqa is not None:
            if vqa.source == "hf-cache":
                st.caption(t("vision.cached.vqa", model=vqa_name))
            question = st.text_input(
                t("vision.blip.question"), value="what is in the picture?", key=P + "question", persist_state="session"
            ).strip()
            if not question:
                st.warning(t("vision.vqa.empty_question"))
            else:
                st.markdown(t("vision.blip.answer", answer=V.answer(vqa, item.image, question)))
        if captioner is None or vqa is None:
            st.info(t("vision.blip.offline"))
    show_code(V.captions, V.answer)
