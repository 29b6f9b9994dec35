"""Option widgets (radio, selectbox, multiselect, segmented control, pills) whose labels follow the UI
language: pass their key through `follow_language`.

Streamlit sends an option widget's value over the wire as its formatted label, and the browser keeps
that label under the widget's id; a keyed widget's id does not change with its labels. After a
language switch the browser still held the old language's label, which matches none of the new
options: a radio showed nothing selected, a selectbox kept showing the English label among Chinese
options (and sending it back on the next rerun, which resets the choice to its default). Setting the
value through session state once, on the first run in the new language, makes Streamlit send it
again (`set_value`), written with the new labels. The choice itself is kept.
"""

from __future__ import annotations

import streamlit as st

from components.i18n import current_lang

DRAWN_IN = "app.option_langs"  # key -> the language its widget was last drawn in


def follow_language(key: str) -> str:
    """`key`, after re-sending its value if the widget was last drawn in another language."""
    lang = current_lang()
    drawn = st.session_state.setdefault(DRAWN_IN, {})
    if drawn.get(key, lang) != lang and key in st.session_state:
        st.session_state[key] = st.session_state[key]
    drawn[key] = lang
    return key
