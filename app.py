"""LLM Playground entry point: sidebar, then the navigation built from the page registry."""
import streamlit as st

from components.i18n import t
from components.page_registry import HOME, PAGES
from components.sidebar import language_picker, device_picker, loaded_models_panel

st.set_page_config(page_title="LLM Playground", page_icon=":material/school:", layout="wide")

language_picker()
device_picker()
navigation = st.navigation(
    [
        st.Page(p.path, title=t(f"page.{p.key}.title"), icon=p.icon, url_path=p.url_path, default=p is HOME)
        for p in PAGES
    ]
)
navigation.run()
# After the page, so models it just loaded are listed.
loaded_models_panel()
