"""Pick a model (registry entries or any hub id / local folder) and load it through the shared cache."""

from __future__ import annotations

import streamlit as st

from backends.models.cache import shared_cache
from backends.models.loaders import LoadedModel
from backends.models.registry import KNOWN, ModelNotAvailable, find_spec, is_online, package_folder
from components import url_state
from components.backend_text import said
from components.i18n import current_lang, t
from components.option_labels import follow_language
from components.sidebar import current_device

OTHER = "__other__"
SESSION_MODELS = "app.session_models"  # models this browser session made (a GPT trained from scratch)


def add_session_model(name: str, folder: str, kind: str = "causal-lm") -> None:
    """Offer a model this session built (a transformers folder) in every page's picker, for the session."""
    own = [m for m in st.session_state.get(SESSION_MODELS, []) if m["path"] != folder]
    st.session_state[SESSION_MODELS] = [*own, {"name": name, "path": folder, "kind": kind}]


def language_default(english: str, chinese: str) -> str:
    """The page's default model for the learner's language: in Chinese the multilingual one, when
    its weights are here (installed offline, or the hub reachable); else the English one."""
    spec = find_spec(chinese)
    if current_lang() == "zh" and spec is not None and (package_folder(spec) is not None or is_online()):
        return chinese
    return english


def model_note(name: str | None) -> str:
    """What a known model can and cannot do, in which language ("" for a model the registry does not know)."""
    spec = find_spec(name or "")
    if spec is None or not (spec.languages or spec.style):
        return ""
    parts = [t("picker.lang." + spec.languages)] if spec.languages else []
    if spec.style:
        parts.append(t("picker.style." + spec.style))
    return " · ".join(parts)


def model_picker(page: str, kinds: tuple[str, ...], default: str | None = None, param: str = "model") -> str | None:
    """A selectbox of known models of these kinds, plus a free-text hub id or folder. Returns the name or None.

    The choice is kept in the link as `?<param>=` (a page with two pickers names two params)."""
    specs = [s for s in KNOWN if s.kind in kinds]
    own = [m for m in st.session_state.get(SESSION_MODELS, []) if m["kind"] in kinds]
    options = [s.key for s in specs] + [m["path"] for m in own] + [OTHER]
    # Short labels (a narrow column cut the long ones off); kind and offline status go in a caption below.
    labels = {s.key: s.label for s in specs}
    details = {s.key: t("kind." + s.kind) + (" · " + t("picker.offline") if package_folder(s) else "") for s in specs}
    for m in own:
        labels[m["path"]] = t("picker.session_model", name=m["name"])
        details[m["path"]] = t("picker.session_detail", path=m["path"])
    labels[OTHER] = t("picker.other")
    key = f"{page}.model"
    linked = url_state.read(param)  # a shared link names the model (a known key, or a hub id / folder)
    if linked:
        st.session_state[key] = linked if linked in options else OTHER
        if linked not in options:
            st.session_state[key + "_other"] = linked[:200]
    st.session_state.setdefault(key, default if default in options else options[0])
    choice = st.selectbox(
        t("picker.model"), options, format_func=labels.get, key=follow_language(key), persist_state="session"
    )
    if choice != OTHER:
        note = model_note(choice)
        st.caption(details[choice] + (" · " + note if note else ""))
        spec = find_spec(choice)
        if current_lang() == "zh" and spec is not None and spec.languages == "en":
            st.caption(t("picker.english_only_zh"))
        url_state.write(param, choice, default if default in options else options[0])
        return choice
    typed = st.text_input(
        t("picker.other_input"),
        key=key + "_other",
        placeholder="Qwen/Qwen2.5-0.5B-Instruct  ·  /path/to/model",
        persist_state="session",
    )
    url_state.write(param, typed.strip() or None)
    return typed.strip() or None


def load_or_explain(name: str, variant: str = "default") -> LoadedModel | None:
    """Load through the shared cache; any failure becomes a message in the page, never a crash."""
    cache = shared_cache()
    device = current_device()
    try:
        with st.spinner(t("picker.loading", model=name, device=device), show_time=True):
            return cache.get(name, device=device, variant=variant)
    except ModelNotAvailable as exc:
        st.error(said(exc, "picker.error."))
    except Exception as exc:  # an arbitrary hub model can fail in many ways; the page must survive it
        st.error(t("picker.load_failed", model=name, error=f"{type(exc).__name__}: {exc}"))
    return None
