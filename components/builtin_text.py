"""Streamlit's own texts in the UI language: the file uploader's button and limit line, the running
indicator's Stop button, the main menu's items.

Streamlit draws these in English whatever the page's language and has no setting for them (no locale
option in 1.67; `client.toolbarMode` only shows or hides the menu). In another language `builtin_css`
hides each English text (font size 0) and writes ours in its place with `::after` (sidebar's
`translate_builtin_widgets` adds it on every run). Streamlit's own dialogs and error messages stay
English.

The uploader's line ("10MB per file • TXT, MD") carries each uploader's own limit, which CSS cannot
read: the generic rule says only where to drop a file, and an uploader drawn with `file_uploader` here
gets its own rule, with its limit and types, through the class Streamlit gives a keyed widget.
"""

from __future__ import annotations

import re

import streamlit as st

from components.i18n import current_lang, t

INSTRUCTIONS = '[data-testid="stFileUploaderDropzoneInstructions"] span'
# The Stop button of the running indicator (the header's status widget while a script runs).
STOP = (
    '[data-testid="stStatusWidget"]:has([data-testid="stStatusWidgetRunningIcon"]) [data-testid="stBaseButton-header"]'
)
UPLOAD_BUTTON = '[data-testid="stFileUploaderDropzone"] [data-testid="stBaseButton-secondary"] p'
MENU_LABEL = '[data-testid="stMainMenuItemLabel"]'
MENU_ITEMS = {"print": "app.menu.print", "recordScreencast": "app.menu.record"}


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _replace(selector: str, text: str, size: str = "0.875rem", wrap: bool = False) -> str:
    """CSS that hides the element's own text and shows `text` instead (`wrap`: on several lines
    where Streamlit cuts its own one line short, as the uploader's line in a narrow column)."""
    own = " white-space: normal !important;" if wrap else ""
    return (
        f"{selector} {{ font-size: 0 !important;{own} }}\n"
        f"{selector}::after {{ content: {_css_string(text)}; font-size: {size}; }}\n"
    )


def builtin_css() -> str:
    """The rules for the current language ("" in English, Streamlit's own)."""
    if current_lang() == "en":
        return ""
    rules = [
        _replace(UPLOAD_BUTTON, t("app.upload_button")),
        _replace(INSTRUCTIONS, t("app.upload_drop"), wrap=True),
        _replace(STOP, t("app.stop")),
        *(_replace(f'[data-testid="stMainMenuItem-{item}"] {MENU_LABEL}', t(key)) for item, key in MENU_ITEMS.items()),
    ]
    return "<style>\n" + "".join(rules) + "</style>"


def key_class(key: str) -> str:
    """The CSS class Streamlit gives a keyed widget's container (its frontend's rule)."""
    return "st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", key.strip())


def limit_text(max_mb: int | float | None, types: list[str] | None) -> str:
    """The uploader's limit line in the UI language: Streamlit's facts (size per file, accepted types)."""
    mb = max_mb if max_mb is not None else st.get_option("server.maxUploadSize")
    size = f"{mb:g}"
    if not types:
        return t("app.upload_limit_any", mb=size)
    listed = t("app.list_sep").join(ext.lstrip(".").upper() for ext in types)
    return t("app.upload_limit", mb=size, types=listed)


def file_uploader(label: str, *, key: str, type: list[str] | None = None, max_upload_size=None, where=st, **kwargs):
    """`where.file_uploader(...)`, its limit line in the UI language (a style rule: it takes no place on the page)."""
    value = where.file_uploader(label, type=type, key=key, max_upload_size=max_upload_size, **kwargs)
    if current_lang() != "en":
        rule = _replace(f".{key_class(key)} {INSTRUCTIONS}", limit_text(max_upload_size, type), wrap=True)
        st.html(f"<style>\n{rule}</style>")
    return value
