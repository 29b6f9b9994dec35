"""One setting, in the sidebar, that sends generation to any OpenAI-compatible server.

vLLM, TGI, Ollama, llama.cpp's server, OpenAI or this app's own `make serve`: with the toggle on,
the decoding page's columns, the LoRA page's before/after answers and the RAG page's answers are
generated there (through `backends.serving.RemoteEngine`, the official `openai` client). The
server address and key are this browser session's only (the key never goes into the address bar,
a log or a file); each page names the model it asks for.
"""

from __future__ import annotations

import os

import streamlit as st

from backends.serving import RemoteEngine, RemoteError
from components.i18n import t

K = "engine."
DEFAULT_URL = "http://localhost:8000/v1"  # make serve


def engine_panel() -> None:
    """The sidebar expander; call once per script run (app.py)."""
    on = st.session_state.get(K + "remote", False)
    # Keyed: its label changes when the toggle inside is switched, and it must stay open then.
    with st.sidebar.expander(
        t("engine.title") + (" · " + t("engine.on") if on else ""), expanded=False, key=K + "panel"
    ):
        st.toggle(t("engine.remote"), key=K + "remote", help=t("engine.remote_help"), persist_state="session")
        st.text_input(
            t("engine.base_url"),
            DEFAULT_URL,
            key=K + "base_url",
            help=t("engine.base_url_help"),
            persist_state="session",
        )
        st.text_input(
            t("engine.api_key"),
            type="password",
            key=K + "api_key",
            help=t("engine.api_key_help"),
            persist_state="session",
        )
        st.text_input(t("engine.api_key_env"), "OPENAI_API_KEY", key=K + "api_key_env", persist_state="session")
        st.toggle(
            t("engine.extensions"),
            True,
            key=K + "extensions",
            help=t("engine.extensions_help"),
            persist_state="session",
        )
        if st.button(t("engine.list"), key=K + "list", type="tertiary", icon=":material/list:"):
            try:
                names = make_engine("-").models()  # listing needs no model: any id will do
            except (ValueError, RemoteError) as exc:
                st.session_state[K + "listed"] = None
                st.error(str(exc))
            else:
                st.session_state[K + "listed"] = names
        listed = st.session_state.get(K + "listed")
        if listed:
            st.caption(t("engine.listed", n=len(listed)) + " " + ", ".join(f"`{m}`" for m in listed[:20]))


def remote_on() -> bool:
    return bool(st.session_state.get(K + "remote", False))


def extensions_on() -> bool:
    return bool(st.session_state.get(K + "extensions", True))


def _key() -> str | None:
    key = st.session_state.get(K + "api_key") or os.environ.get(st.session_state.get(K + "api_key_env") or "", "")
    return key or None


def make_engine(model: str) -> RemoteEngine:
    """A client for `model` on the configured server; raises ValueError for a bad URL or empty model."""
    return RemoteEngine(st.session_state.get(K + "base_url") or DEFAULT_URL, model, api_key=_key())


def settings() -> tuple[str, str | None]:
    """(base URL, API key or None): for code that builds its own client (the RAG generator)."""
    return st.session_state.get(K + "base_url") or DEFAULT_URL, _key()


def server_label() -> str:
    return st.session_state.get(K + "base_url") or DEFAULT_URL


def remote_model_input(key: str, default: str, label: str | None = None) -> str:
    """The model id a page asks the server for: a pick from the listed models, or typed."""
    listed = list(st.session_state.get(K + "listed") or [])
    current = st.session_state.setdefault(key, default)  # the widget then takes no default of its own
    if listed:
        if current and current not in listed:  # typed before the list was fetched, or just published
            listed.append(current)
        return st.selectbox(label or t("engine.model"), listed, key=key, persist_state="session")
    return st.text_input(
        label or t("engine.model"), key=key, help=t("engine.model_help"), persist_state="session"
    ).strip()
