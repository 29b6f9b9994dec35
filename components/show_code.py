"""Show the source of the backend functions a page just ran (after Streamlit's own hello app)."""

from __future__ import annotations

import inspect

import streamlit as st

from components.i18n import t


def show_code(*functions, expanded: bool = False) -> None:
    with st.expander(t("code.show"), expanded=expanded):
        for fn in functions:
            st.caption(f"{fn.__module__}.{fn.__qualname__}")
            st.code(inspect.getsource(fn), language="python")
