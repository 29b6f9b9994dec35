"""Sidebar shared by every page: language, device, and the loaded-models panel."""
from __future__ import annotations

import streamlit as st

from backends.models.cache import shared_cache
from backends.core.device import available_devices, resolve_device
from components.i18n import LANGS, STATE_KEY, t

DEVICE_KEY = "app.device_choice"


def current_device() -> str:
    """The device this session's pages load models on ("auto" resolved once per choice)."""
    return resolve_device(st.session_state.get(DEVICE_KEY, "auto"))


def language_picker() -> None:
    st.sidebar.radio(
        "Language / 语言",
        options=list(LANGS),
        format_func=LANGS.get,
        key=STATE_KEY,
        horizontal=True,
    )


def device_picker() -> None:
    st.sidebar.selectbox(
        t("sidebar.device"),
        options=["auto", *available_devices()],
        key=DEVICE_KEY,
        help=t("sidebar.device_help"),
    )
    st.sidebar.caption(t("sidebar.device_resolved", device=current_device()))


def loaded_models_panel() -> None:
    cache = shared_cache()
    entries = cache.entries()
    with st.sidebar.expander(t("sidebar.loaded", n=len(entries)), expanded=bool(entries)):
        if not entries:
            st.caption(t("sidebar.loaded_none"))
        for device in sorted({e.key.device for e in entries}):
            st.markdown(f"**{device}** · {cache.used_bytes(device) / 2**20:,.0f} MiB")
            for entry in (e for e in entries if e.key.device == device):
                k = entry.key
                variant = "" if k.variant == "default" else f" · {k.variant}"
                st.markdown(f"`{k.model}`  \n{k.dtype}{variant} · {entry.nbytes / 2**20:,.0f} MiB")
                unload_id = f"app.unload.{k.model}.{k.device}.{k.dtype}.{k.variant}"
                if st.button(t("sidebar.unload"), key=unload_id, icon=":material/eject:", type="tertiary"):
                    cache.unload(k)
                    st.rerun()
