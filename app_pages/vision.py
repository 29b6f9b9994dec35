"""Vision: zero-shot classification, image search, Grad-CAM, and captions / visual questions.

Offline it runs on real pretrained parts (ConSE from EfficientNet-Lite0 + MiniLM, a tiny VQA
model the user trains); with a CLIP or BLIP id or folder it runs the real models.
"""

import streamlit as st

from backends import vision as V
from backends.vision.conse import conse_from_probs
from components.i18n import t
from components.option_labels import follow_language
from components.show_code import show_code
from components.vision.blip import blip_panel
from components.vision.charts import probability_bars
from components.vision.inputs import (
    cached_defaults,
    image_and_panel,
    image_text_space,
    pick_image,
    sample_name,
)
from components.vision.search import search_tab
from components.vision.verdict import english_only_notes, show_verdict
from components.vision.vqa import ask_panel, train_panel

P = "vision."

st.title(t("page.vision.title"))
st.markdown(t("vision.intro"))
tabs = st.tabs(
    [t("vision.tab.zeroshot"), t("vision.tab.search"), t("vision.tab.why"), t("vision.tab.vqa")],
    key=P + "tab",
    on_change="rerun",
)


def zeroshot_tab():
    space = image_text_space()
    if space is None:
        return
    with st.expander(t("vision.method.explain"), expanded=False):
        st.markdown(t(f"vision.method.explain.{space.method}"))
    item, right = image_and_panel("zs")
    if item is None:
        return
    with right:
        raw = st.text_input(
            t("vision.zs.labels"), value="cat, dog, car, coffee, rocket", key=P + "zs.labels", persist_state="session"
        )
        templates_text = st.text_area(
            t("vision.zs.templates"),
            value="\n".join(V.DEFAULT_TEMPLATES),
            height=140,
            key=P + "zs.templates",
            help=t("vision.zs.templates_help"),
            persist_state="session",
        )
        try:
            labels = V.clean_labels(raw)
            templates = V.check_templates(templates_text.splitlines())
        except V.LabelError as exc:
            st.error(t(f"vision.zs.error.{exc.code}", **exc.params))
            return
        english_only_notes(space, labels)
        vector = space.embed_images([item.image])[0]
        result = V.zero_shot(space, vector, labels, templates)
        st.plotly_chart(
            probability_bars(labels, result.probs, t("vision.zs.chart", n=len(templates))), key=P + "zs.chart"
        )
        show_verdict(V.verdict(result), float(result.probs.max()))
    if len(templates) > 1:
        st.markdown(t("vision.zs.ensemble"))
        # Labels and templates are the user's text: rows per label, templates numbered (#1, #2...).
        rows = {t("vision.zs.label"): labels}
        for i in range(len(templates)):
            rows[f"#{i + 1}"] = [f"{p:.1%}" for p in result.per_template[i]]
        rows[t("vision.zs.ensembled")] = [f"{p:.1%}" for p in result.probs]
        st.dataframe(rows, hide_index=True, key=P + "zs.table")
        st.caption(
            t("vision.zs.templates_legend", legend=" · ".join(f"#{i + 1} `{tpl}`" for i, tpl in enumerate(templates)))
        )
    if space.method == "conse":
        probs = space.probs([item.image])[0].numpy()
        top = V.top_classes(probs, space.class_names, space.top_k)
        st.markdown(t("vision.zs.conse_sees", k=space.top_k))
        st.dataframe(
            {t("vision.col.class"): [c.name for c in top], t("vision.col.prob"): [f"{c.prob:.1%}" for c in top]},
            hide_index=True,
            key=P + "zs.classes",
        )
        show_code(V.ConseSpace.embed_images, conse_from_probs, V.zero_shot)
    else:
        kind = V.OpenClipSpace if space.method == "open_clip" else V.ClipSpace
        show_code(kind.embed_images, kind.embed_texts, V.zero_shot)


def why_tab():
    space = image_text_space()
    if space is None:
        return
    st.markdown(t("vision.why.intro"))
    left, right = st.columns([1, 1])
    with left:
        item = pick_image("why")
        if item is None:
            return
    label = st.text_input(t("vision.why.label"), value="cat", key=P + "why.label", persist_state="session").strip()
    if not label:
        st.warning(t("vision.why.empty"))
        return
    english_only_notes(space, [label], explain=False)
    if space.method == "conse":
        text_vector = space.embed_texts([label])[0]
        cam = V.efficientnet_cam(
            space.classifier.model,
            item.image,
            label_vector=text_vector,
            class_vectors=space.class_vectors,
            top_k=space.top_k,
            target=label,
        )
        code = (V.efficientnet_cam,)
    else:
        cam = V.vit_cam(space, item.image, label)
        code = (V.vit_cam,)
    alpha = st.slider(t("vision.why.alpha"), 0.0, 1.0, 0.45, 0.05, key=P + "why.alpha", persist_state="session")
    with left:
        st.image(item.image, caption=sample_name(item.name))
    with right:
        st.image(
            V.overlay(item.image, cam.heatmap, alpha),
            caption=t("vision.why.caption", label=label, score=f"{cam.score:.3f}"),
        )
    h, w = cam.grid.shape
    st.caption(t(f"vision.why.layer.{'efficientnet' if space.method == 'conse' else 'vit'}", h=h, w=w))
    show_code(*code)


def vqa_tab():
    cached_defaults()  # BLIP first when the local Hugging Face cache holds it
    mode = st.radio(
        t("vision.vqa.mode"),
        ["tiny", "blip"],
        horizontal=True,
        key=follow_language(P + "vqa.mode"),
        format_func=lambda m: t(f"vision.vqa.mode.{m}"),
        persist_state="session",
    )
    if mode == "blip":
        blip_panel()
        return
    st.markdown(t("vision.vqa.intro"))
    train_panel()
    st.divider()
    st.subheader(t("vision.vqa.ask_title"))
    ask_panel()


for tab, render in zip(tabs, (zeroshot_tab, search_tab, why_tab, vqa_tab)):
    if tab.open:
        with tab:
            render()
