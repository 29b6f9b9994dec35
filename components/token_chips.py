"""Tokens as coloured chips: hover shows index, id and details; special and unknown tokens are marked."""

from __future__ import annotations

import html

import streamlit as st

from backends.tokenizers.engines import show_whitespace as visible_whitespace

_SEGMENT_COLORS = ("#e8e4ff", "#ffe9d6")
# Neighbouring tokens get different colours so boundaries are visible (as in tiktokenizer).
_PALETTE = ("#e8e4ff", "#d7f0e0", "#ffe9d6", "#dbeafe", "#fde2f3", "#fff4c2")
_SPECIAL = "#d9d9d9"


def token_chips(
    tokens,
    ids,
    special_mask=None,
    segment_ids=None,
    *,
    unknown=None,
    details=None,
    palette: bool = False,
    show_whitespace: bool = False,
    start: int = 0,
    max_tokens: int = 600,
) -> None:
    """Render tokens[:max_tokens]; `start` is the index of tokens[0] in the whole text (for paging)."""
    chips = []
    for i, (tok, tid) in enumerate(zip(tokens[:max_tokens], ids[:max_tokens])):
        special = special_mask is not None and bool(special_mask[i])
        segment = int(segment_ids[i]) if segment_ids is not None else 0
        if special:
            color = _SPECIAL
        elif palette:
            color = _PALETTE[(start + i) % len(_PALETTE)]
        else:
            color = _SEGMENT_COLORS[segment % 2]
        style = f"background:{color};border-radius:4px;padding:1px 4px;margin:1px;display:inline-block;"
        style += "font-family:monospace;font-size:0.85em;white-space:pre;"
        if special:
            style += "font-style:italic;"
        if unknown is not None and unknown[i]:
            style += "outline:2px dashed #d33;"
        title = f"#{start + i} · id {tid}"
        if segment_ids is not None:
            title += f" · segment {'AB'[segment]}"
        if details is not None:
            title += f" · {details[i]}"
        label = visible_whitespace(tok) if show_whitespace else tok
        chips.append(f'<span title="{html.escape(title)}" style="{style}">{html.escape(label) or "&nbsp;"}</span>')
    more = f" … +{len(tokens) - max_tokens}" if len(tokens) > max_tokens else ""
    st.markdown(f'<div style="line-height:1.9">{"".join(chips)}{more}</div>', unsafe_allow_html=True)
