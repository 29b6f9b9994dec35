"""Choosing images and the image-text space; every failure is a message in the page, never a crash."""

from __future__ import annotations

import streamlit as st

from backends import vision as V
from backends.models.registry import ModelNotAvailable
from backends.vision.samples import SAMPLES, sample
from components.builtin_text import file_uploader
from components.i18n import t
from components.model_picker import load_or_explain
from components.option_labels import follow_language

P = "vision."
UPLOAD_MB = 50
CACHED = P + "cached.defaults"


def cached_defaults() -> dict[str, str | None]:
    """The real CLIP / BLIP ids this session runs by default (None: the offline stand-in), decided once.

    At the session's first draw the local Hugging Face cache is read (no network) and, where it holds
    a real model, the method / VQA-mode radios start on it; ConSE and the tiny VQA stay one click
    away. Later changes to the cache, or the user's own choice, are never overridden.
    """
    decided = st.session_state.get(CACHED)
    if decided is None:
        decided = {}
        for kind in ("clip", "blip-caption", "blip-vqa"):
            found = V.preferred(kind)
            decided[kind] = found.repo_id if found else None
        st.session_state[CACHED] = decided
        if decided["clip"] and P + "method" not in st.session_state:
            st.session_state[P + "method"] = "clip"
        if (decided["blip-caption"] or decided["blip-vqa"]) and P + "vqa.mode" not in st.session_state:
            st.session_state[P + "vqa.mode"] = "blip"
    return decided


def sample_name(name: str) -> str:
    """A sample's name in the UI language; other images keep their file name."""
    return t(f"vision.sample.{name}") if name in SAMPLES else name


def pick_image(where: str, default: str = "chelsea") -> V.LoadedImage | None:
    """Sample gallery, upload or camera; the chosen image, or None with the reason shown."""
    source = st.radio(
        t("vision.image.source"),
        ["sample", "upload", "camera"],
        horizontal=True,
        key=follow_language(f"{P}{where}.source"),
        format_func=lambda s: t(f"vision.image.source.{s}"),
        persist_state="session",
    )
    if source == "sample":
        name = st.selectbox(
            t("vision.image.sample"),
            SAMPLES,
            index=SAMPLES.index(default),
            key=follow_language(f"{P}{where}.sample"),
            format_func=sample_name,
            persist_state="session",
        )
        return sample(name)
    if source == "upload":
        file = file_uploader(t("vision.image.upload"), key=f"{P}{where}.upload", max_upload_size=UPLOAD_MB)
    else:
        file = st.camera_input(t("vision.image.camera"), key=f"{P}{where}.camera")
    if file is None:
        st.info(t("vision.image.none"))
        return None
    try:
        loaded = V.load_image(file.getvalue(), file.name)
    except V.ImageError as exc:
        st.error(str(exc))
        return None
    if loaded.notes:
        st.caption(t("vision.image.notes", notes="; ".join(loaded.notes)))
    return loaded


def conse_parts():
    """The two cached models ConSE is built from, or None (the reason is shown)."""
    classifier = load_or_explain(V.CLASSIFIER, variant="image-classifier")
    encoder = load_or_explain(V.ENCODER, variant="sentence") if classifier else None
    return (classifier, encoder) if encoder else None


def image_text_space():
    """The space the zero-shot, search and Grad-CAM tabs use: a CLIP found in the local Hugging Face
    cache, else ConSE offline, or a CLIP the user names."""
    cached = cached_defaults()["clip"]
    method = st.radio(
        t("vision.method"),
        ["conse", "clip", "open_clip"],
        horizontal=True,
        key=follow_language(P + "method"),
        format_func=lambda m: t(f"vision.method.{m}"),
        persist_state="session",
    )
    if method == "open_clip":
        return open_clip_space()
    if method == "clip":
        name = st.text_input(
            t("vision.clip.name"),
            value=cached or V.DEFAULT_CLIP,
            key=P + "clip_name",
            help=t("vision.clip.help"),
            persist_state="session",
        ).strip()
        if not name:
            st.warning(t("vision.clip.empty"))
            return None
        loaded = load_or_explain(name, variant="clip")
        if loaded is None:
            st.info(t("vision.clip.fallback"))
            return None
        if loaded.source == "hf-cache":
            st.caption(t("vision.cached.clip", model=name))
        else:
            st.caption(t("vision.clip.running", model=name, source=loaded.source))
        return V.ClipSpace(loaded)
    parts = conse_parts()
    if parts is None:
        return None
    key = P + "conse_space"
    cached = st.session_state.get(key)
    if cached is None or cached.classifier is not parts[0] or cached.encoder is not parts[1]:
        try:
            with st.spinner(t("vision.conse.preparing")):
                cached = V.ConseSpace(*parts)
        except (ModelNotAvailable, OSError) as exc:
            st.error(str(exc))
            return None
        st.session_state[key] = cached
    st.caption(t("vision.conse.running"))
    return cached


def open_clip_space():
    """An open_clip model the user names (`open_clip:ARCH/TAG`, `open_clip:hf-hub:repo` or a folder), or None."""
    name = st.text_input(
        t("vision.open_clip.name"),
        value=V.DEFAULT_OPEN_CLIP,
        key=P + "open_clip_name",
        help=t("vision.open_clip.help"),
        persist_state="session",
    ).strip()
    if not name:
        st.warning(t("vision.open_clip.empty"))
        return None
    if not name.startswith("open_clip:"):
        name = "open_clip:" + name  # the form is the same with or without the prefix
    loaded = load_or_explain(name, variant="clip")
    if loaded is None:
        st.info(t("vision.clip.fallback"))
        return None
    space = V.OpenClipSpace(loaded)
    st.caption(t("vision.open_clip.running", model=name.removeprefix("open_clip:"), source=loaded.source))
    # Grad-CAM reads the tokens entering a ViT's last block; open_clip's ResNet and timm towers have none.
    if st.session_state.get(P + "tab") == t("vision.tab.why") and not space.has_vit_tower:
        st.warning(t("vision.open_clip.no_gradcam", model=name))
        return None
    return space


def read_uploads(files) -> V.ZipResult:
    result = V.load_uploads([(f.name, f.getvalue()) for f in files])
    for name, why in result.skipped:
        st.warning(t("vision.upload.skipped", name=name, why=why))
    return result


def image_and_panel(where: str):
    """A picker with the image in a narrow left column; returns (image or None, the wide right column)."""
    left, right = st.columns([1, 2])
    with left:
        item = pick_image(where)
        if item is not None:
            st.image(item.image, caption=sample_name(item.name))
    return item, right
