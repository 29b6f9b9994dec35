"""Tokens as coloured chips: segment A/B, special tokens marked, hover shows index and id."""
from __future__ import annotations

import html

import streamlit as st

_SEGMENT_COLORS = ("#e8e4ff", "#ffe9d6")
_SPECIAL = "#d9d9d9"


def token_chips(tokens, ids, special_mask=None, segment_ids=None, max_tokens: int = 600) -> None:
    chips = []
    for i, (tok, tid) in enumerate(zip(tokens[:max_tokens], ids[:max_tokens])):
        special = special_mask is not None and bool(special_mask[i])
        segment = int(segment_ids[i]) if segment_ids is not None else 0
        color = _SPECIAL if special else _SEGMENT_COLORS[segment % 2]
        style = f"background:{color};border-radius:4px;padding:1px 4px;margin:1px;display:inline-block;"
        style += "font-family:monospace;font-size:0.85em;" + ("font-style:italic;" if special else "")
        title = html.escape(f"#{i} · id {tid}" + (f" · segment {'AB'[segment]}" if segment_ids is not None else ""))
        chips.append(f'<span title="{title}" style="{style}">{html.escape(tok)}</span>')
    more = f" … +{len(tokens) - max_tokens}" if len(tokens) > max_tokens else ""
    st.markdown(f'<div style="line-height:1.9">{"".join(chips)}{more}</div>', unsafe_allow_html=True)
