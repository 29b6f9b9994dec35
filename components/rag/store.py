"""Where a collection lives: the vector-store setting, and the panel that saves, opens and deletes collections."""

from __future__ import annotations

import streamlit as st

from backends.rag.collection import (
    Collection,
    CollectionError,
    collection_folder,
    delete_collection,
    saved_collections,
)
from backends.rag.stores import STORES, StoreError
from components.i18n import t
from components.option_labels import follow_language
from components.sidebar import current_device

P = "rag."


def store_settings() -> tuple[str, str | None]:
    """The vector store: FAISS in this process, or Qdrant (in this process, or a server URL)."""
    store = st.radio(
        t("rag.store"),
        STORES,
        horizontal=True,
        key=follow_language("rag.store"),
        help=t("rag.store_help"),
        format_func=lambda s: t("rag.store." + s),
        persist_state="session",
    )
    url = None
    if store == "qdrant":
        url = (
            st.text_input(
                t("rag.store_url"),
                "",
                key="rag.store_url",
                placeholder="http://localhost:6333",
                help=t("rag.store_url_help"),
                persist_state="session",
            ).strip()
            or None
        )
    return store, url


def collections_panel(collection: Collection | None, store: str, store_url: str | None) -> None:
    """Save this session's collection under a name, or open or delete a saved one (opened into `store`)."""
    with st.expander(t("rag.collections")):
        c1, c2 = st.columns(2)
        name = c1.text_input(t("rag.save_name"), "my-documents", key=P + "save_name", persist_state="session")
        if c1.button(t("rag.save"), disabled=collection is None, key=P + "save"):
            try:
                folder = collection.save(collection_folder(name))
                st.success(t("rag.saved", folder=str(folder)))
            except (CollectionError, OSError) as exc:
                st.error(str(exc))
        names = saved_collections()
        chosen = c2.selectbox(
            t("rag.open_saved"),
            names,
            key=P + "open_name",
            placeholder=t("rag.none_saved"),
            index=None,
            persist_state="session",
        )
        b1, b2 = c2.columns(2)
        if b1.button(t("rag.open"), disabled=chosen is None, key=P + "open"):
            try:
                st.session_state[P + "collection"] = Collection.load(
                    collection_folder(chosen), current_device(), store, store_url
                )
                st.rerun()
            except (CollectionError, StoreError) as exc:
                st.error(t("rag.open_failed", name=chosen, error=str(exc)))
        if b2.button(t("rag.delete"), disabled=chosen is None, key=P + "delete"):
            try:
                delete_collection(chosen)
                st.rerun()
            except CollectionError as exc:
                st.error(str(exc))
