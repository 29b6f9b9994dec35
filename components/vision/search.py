"""The image search tab: index a gallery in the background, search it by text or by image, map it."""

from __future__ import annotations

import streamlit as st

from backends import vision as V
from backends.core.jobs import FAILED, shared_runner
from backends.vision.samples import all_samples
from components.builtin_text import file_uploader
from components.i18n import t
from components.job_status import job_status, newly_finished
from components.option_labels import follow_language
from components.show_code import show_code
from components.vision.charts import embedding_map
from components.vision.inputs import image_text_space, read_uploads, sample_name
from components.vision.verdict import english_only_notes

P = "vision.search."
COLUMNS = 4


def _start(space) -> None:
    if st.session_state.get(P + "source", "samples") == "samples":
        images, skipped = all_samples(), []
    else:
        files = st.session_state.get(P + "files") or []
        if not files:
            st.warning(t("vision.search.no_files"))
            return
        result = read_uploads(files)
        images, skipped = result.images, result.skipped
        if not images:
            st.error(t("vision.search.nothing_usable"))
            return
    job = shared_runner().submit("vision.index", V.index_job, space, images, skipped)
    st.session_state[P + "job"] = job.id


def _adopt() -> None:
    job = newly_finished(P + "job")
    if job is not None and job.status == "done" and job.result is not None:
        st.session_state[P + "gallery"] = job.result
        job.result = None


def _grid(gallery: V.Gallery, hits: list[V.Hit]) -> None:
    for start in range(0, len(hits), COLUMNS):
        for col, hit in zip(st.columns(COLUMNS), hits[start : start + COLUMNS]):
            col.image(gallery.thumbnails[hit.index], caption=f"{sample_name(hit.name)} · {hit.score:.3f}")


def search_tab() -> None:
    space = image_text_space()
    if space is None:
        return
    st.markdown(t("vision.search.intro"))
    source = st.radio(
        t("vision.search.source"),
        ["samples", "upload"],
        horizontal=True,
        key=follow_language(P + "source"),
        format_func=lambda s: t(f"vision.search.source.{s}"),
        persist_state="session",
    )
    if source == "upload":
        file_uploader(
            t("vision.search.upload"),
            accept_multiple_files=True,
            key=P + "files",
            type=["jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff", "zip"],
        )
    running = (job := shared_runner().get(st.session_state.get(P + "job"))) is not None and not job.done
    if st.button(t("vision.search.build"), key=P + "build", disabled=running, icon=":material/database:"):
        _start(space)
    _adopt()
    job_status(
        P + "job",
        lambda j: t("vision.search.indexing", p=f"{(j.progress or 0):.0%}"),
        lambda j: st.error(t("vision.search.failed", error=j.error)) if j.status == FAILED else None,
    )
    gallery: V.Gallery | None = st.session_state.get(P + "gallery")
    if gallery is None:
        st.info(t("vision.search.none"))
        return
    if gallery.method != space.method:
        st.warning(t("vision.search.other_space", method=gallery.method))
        return
    st.caption(t("vision.search.ready", n=len(gallery)))
    for name, why in gallery.skipped:
        st.caption(t("vision.upload.skipped", name=name, why=why))
    how = st.radio(
        t("vision.search.by"),
        ["text", "image"],
        horizontal=True,
        key=follow_language(P + "by"),
        format_func=lambda s: t(f"vision.search.by.{s}"),
        persist_state="session",
    )
    k = min(8, len(gallery))
    if how == "text":
        query = st.text_input(
            t("vision.search.query"), value="a cup of coffee", key=P + "query", persist_state="session"
        ).strip()
        if not query:
            st.warning(t("vision.search.empty"))
            return
        english_only_notes(space, [query], explain=False)
        vector = space.embed_texts([query])[0]
        hits, label = V.search_vector(gallery, vector, k), query
    else:
        choice = st.selectbox(
            t("vision.search.like"),
            range(len(gallery)),
            format_func=lambda i: sample_name(gallery.names[i]),
            key=follow_language(P + "like"),
            persist_state="session",
        )
        vector = gallery.vectors[choice]
        hits, label = V.search_vector(gallery, vector, k, exclude=choice), sample_name(gallery.names[choice])
    _grid(gallery, hits)
    points, query_point = V.pca_2d(gallery.vectors, vector[None])
    st.plotly_chart(
        embedding_map(points, [sample_name(n) for n in gallery.names], query_point, label, t("vision.search.map")),
        key=P + "map",
    )
    show_code(V.build_gallery, V.search_vector, V.pca_2d)
