"""The Memory tab: what full history, a window and a running summary send, turn by turn."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backends import agents as A
from components.i18n import t

P = "agents.memory."


def memory_tab(loaded) -> None:
    st.markdown(t(P + "intro"))
    k = st.slider(t(P + "k"), 1, 4, 2, key=P + "k", persist_state="session")
    dialogue = A.shipped_dialogue()
    rows = A.memory_table(loaded.tokenizer, dialogue, int(k))
    names = {s: t(P + "strategy." + s) for s in A.STRATEGIES}
    table = pd.DataFrame(
        [
            {
                t(P + "col.turn"): n,
                t(P + "col.user"): dialogue["turns"][n - 1]["user"],
                **{names[r.strategy]: r.tokens for r in rows if r.turn == n},
            }
            for n in range(1, len(dialogue["turns"]) + 1)
        ]
    )
    st.dataframe(table, hide_index=True)
    last = [r for r in rows if r.turn == len(dialogue["turns"])]
    needs = ", ".join(dialogue["needs"])
    for r in last:
        key = "remembers" if r.remembers else "forgets"
        st.markdown(t(P + key, strategy=names[r.strategy], needs=needs, tokens=r.tokens))
    st.caption(t(P + "summary_note"))
    turn = st.slider(
        t(P + "turn"), 1, len(dialogue["turns"]), len(dialogue["turns"]), key=P + "turn", persist_state="session"
    )
    cols = st.columns(len(A.STRATEGIES))
    for col, r in zip(cols, [r for r in rows if r.turn == turn]):
        with col:
            st.markdown(f"**{names[r.strategy]}** · {t(P + 'tokens', n=r.tokens)}")
            st.json(r.messages, expanded=False)
