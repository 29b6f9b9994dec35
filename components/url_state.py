"""A page's shareable state in the URL, so a teacher's link opens the same view for every student.

    url_state.bind("dec.prompt", "prompt")                # text
    url_state.bind("attention.layer", "layer", parse=int)  # numbers, validated by `parse`

`bind` is called before the widget that owns `key` is drawn, and the widget is then
drawn without a default value of its own (`bind` puts the default in the session
state; Streamlit warns when a widget has both). On a session's first run the value
comes from the link (a bad value is ignored: the default stays); on every run the
current value goes back into the address bar, and a value equal to the default is left
out so links stay short. Long texts are capped (MAX_CHARS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

MAX_CHARS = 2000
_SEEN = "app.url_state_seen"


def _first_run_for(key: str) -> bool:
    seen = st.session_state.setdefault(_SEEN, set())
    if key in seen:
        return False
    seen.add(key)
    return True


def bind(
    key: str,
    param: str,
    default: Any = None,
    parse: Callable[[str], Any] = str,
    dump: Callable[[Any], str] = str,
    valid: Callable[[Any], bool] | None = None,
) -> None:
    """Link `st.session_state[key]` and the query parameter `param` (see the module doc)."""
    if _first_run_for(key) and param in st.query_params:
        try:
            value = parse(st.query_params[param])
            if valid is None or valid(value):
                st.session_state[key] = value
        except (TypeError, ValueError):
            pass  # a hand-edited link with a bad value: the widget keeps its default
    if default is not None:
        st.session_state.setdefault(key, default)
    write(param, st.session_state.get(key, default), default, dump)


def write(param: str, value: Any, default: Any = None, dump: Callable[[Any], str] = str) -> None:
    """Put one value in the address bar (or take it out when it is the default or empty)."""
    if value is None or value == default or value == "":
        st.query_params.pop(param, None)
        return
    text = dump(value)[:MAX_CHARS]
    if st.query_params.get(param) != text:
        st.query_params[param] = text


def read(param: str) -> str | None:
    """A value from the link, on this session's first run for `param` only (else None)."""
    if _first_run_for("param:" + param) and param in st.query_params:
        return st.query_params[param]
    return None


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def dump_bool(value: bool) -> str:
    return "1" if value else "0"
