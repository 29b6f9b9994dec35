"""The zero-shot result in words: a winner only when the scores are not within noise, and what an
English-only text encoder does with labels it cannot read."""

from __future__ import annotations

import streamlit as st

from backends import vision as V
from backends.vision.zeroshot import ONE_TEMPLATE_GAP
from components.i18n import current_lang, t


def english_only_notes(space, labels: list[str], explain: bool = True) -> None:
    """In Chinese (`explain`), why the labels are English; with CJK text, a warning in the page's language."""
    english_only = space.method == "conse"  # MiniLM; a CLIP the user names may be multilingual
    if explain and english_only and current_lang() != "en":
        st.info(t("vision.zs.english_only"))
    cjk = V.non_english(labels)
    if cjk:
        which = "conse" if english_only else "clip"
        st.warning(t(f"vision.zs.cjk.{which}", labels=t("app.list_sep").join(cjk)))


def show_verdict(verdict: V.Verdict, p_best: float) -> None:
    """Name the best label when it wins clearly; otherwise say there is no clear winner, and why."""
    if verdict.clear:
        st.success(t("vision.zs.best", label=verdict.best, p=f"{p_best:.1%}"))
        return
    st.warning(
        t(
            f"vision.zs.verdict.{verdict.code}",
            best=verdict.best,
            runner_up=verdict.runner_up,
            gap=f"{verdict.gap:.1%}",
            template=verdict.flipped_by or "",
            limit=f"{ONE_TEMPLATE_GAP:.0%}",
        )
    )
