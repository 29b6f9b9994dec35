"""The one place UI strings come from, in English and Simplified Chinese.

Strings live in assets/locales/<lang>.json (app-wide) and
assets/locales/<lang>/<page>.json (one file per page, so pages are edited
without touching each other's strings), all flat key -> text maps. A key may
be defined once only. A test checks both languages carry the same keys and
that every t("...") in the code exists.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

LANGS = {"en": "English", "zh": "简体中文"}
STATE_KEY = "app.lang"
LOCALES = Path(__file__).resolve().parent.parent / "assets" / "locales"


@cache
def strings(lang: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for path in [LOCALES / f"{lang}.json", *sorted((LOCALES / lang).glob("*.json"))]:
        part = json.loads(path.read_text(encoding="utf-8"))
        clash = sorted(set(part) & set(table))
        if clash:
            raise ValueError(f"{path} redefines {', '.join(clash[:5])}")
        table.update(part)
    return table


_last_lang = ["en"]


def current_lang() -> str:
    """This session's language. Outside a script run (AppTest formatting a widget's options after
    the run, in the test's own thread) there is no session: the language the last run used."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return _last_lang[0]
    lang = st.session_state.get(STATE_KEY, "en")
    lang = lang if lang in LANGS else "en"
    _last_lang[0] = lang
    return lang


def t(key: str, **values) -> str:
    table = strings(current_lang())
    text = table.get(key) or strings("en").get(key) or key
    return text.format(**values) if values else text
