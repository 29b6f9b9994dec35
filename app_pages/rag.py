"""RAG chat over your documents: every step on show, and answers that cite their pages."""

from pathlib import Path

import streamlit as st

from backends.core.jobs import DONE, FAILED, shared_runner
from backends.rag import pipeline
from backends.rag.build import build_collection
from backends.rag.citations import WEAK_COSINE
from backends.rag.collection import Collection
from backends.rag.generators import (
    GeneratorError,
    LocalGenerator,
    OpenAICompatibleGenerator,
)
from backends.rag.ingest import SUFFIXES
from backends.rag.pdf_parts import pdf_page_count
from backends.rag.rerank import DEFAULT_RERANKER, rerank, reranker_available
from backends.rag.types import INGEST_NEEDS_PASSWORD, METHODS, ChunkSettings
from components import engine
from components import rag as views
from components.builtin_text import file_uploader
from components.experiments import experiments_panel
from components.guard import allow, queue_status
from components.i18n import t
from components.job_status import job_status, newly_finished
from components.model_picker import load_or_explain, model_picker
from components.option_labels import follow_language
from components.sidebar import current_device

P = "rag."
SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"
SAMPLE_PDF = next(iter(sorted(SAMPLES.glob("*.pdf"))), None)
SAMPLE_EVAL = SAMPLES / "sample_eval.jsonl"
# Evaluation sets of the Evaluate tab: the sample's paraphrased questions (the default: there the retrievers
# differ), the sample's own 15, and a held-out set on a real manual (GNU time, GFDL; never used for tuning).
HELDOUT_PDF = SAMPLES / "rag_heldout" / "gnu_time_manual.pdf"
EVAL_SETS = {
    "paraphrased": SAMPLES / "sample_paraphrased.jsonl",
    "sample": SAMPLE_EVAL,
    "heldout": SAMPLES / "rag_heldout" / "eval.jsonl",
}
UPLOAD_MAX_MB = 50
# Smaller than a page of the sample, so pages split into several chunks and retrieval has to choose.
DEFAULT_CHUNKS = ChunkSettings("characters", 500, 80)
PROMPT_HITS = 2  # passages the generator reads: a 135M model answers better from fewer (bench/rag.py)

st.title(t("page.rag.title"))
st.caption(t("rag.intro"))

runner = shared_runner()


def adopt_finished_index() -> None:
    """A finished indexing job replaces the session's collection once; a failed one leaves it as it was."""
    job = newly_finished(P + "index_job")
    if job is not None and job.status == DONE:
        st.session_state[P + "collection"] = job.result


adopt_finished_index()
collection: Collection | None = st.session_state.get(P + "collection")

with st.expander(t("rag.settings"), expanded=collection is None):
    s1, s2 = st.columns(2)
    with s1:
        st.markdown("**" + t("rag.retrieval_side") + "**")
        embed_name = model_picker(P + "embed", ("embedding",), "all-minilm-l6-v2", param="embed")
        method = st.radio(
            t("rag.method"),
            METHODS,
            index=2,
            horizontal=True,
            key=follow_language(P + "method"),
            format_func=lambda m: t("rag.method." + m),
            persist_state="session",
        )
        top_k = st.slider(t("rag.top_k"), 1, 10, 4, key=P + "top_k", persist_state="session")
        weak_threshold = st.slider(
            t("rag.weak_threshold"),
            0.0,
            1.0,
            WEAK_COSINE,
            0.05,
            key=P + "weak",
            help=t("rag.weak_help"),
            persist_state="session",
        )
        can_rerank = reranker_available()
        use_rerank = st.toggle(
            t("rag.rerank"),
            False,
            key=P + "rerank",
            disabled=not can_rerank,
            help=t("rag.rerank_help", model=DEFAULT_RERANKER),
            persist_state="session",
        )
        if not can_rerank:
            st.caption(t("rag.rerank_missing", model=DEFAULT_RERANKER))
        store, store_url = views.store_settings()
    with s2:
        st.markdown("**" + t("rag.generation_side") + "**")
        # One setting for every generation page: the sidebar's generation engine.
        backend = "openai" if engine.remote_on() else "local"
        if backend == "local":
            llm_name = model_picker(P + "llm", ("causal-lm",), "smollm2-135m-instruct", param="llm")
        else:
            st.caption(t("rag.remote_note", server=engine.server_label()))
            engine.remote_model_input(P + "remote_model", "smollm2-135m-instruct", label=t("rag.remote_model"))
        max_new = st.slider(t("rag.max_new"), 16, 512, 160, 16, key=P + "max_new", persist_state="session")
        prompt_hits = st.slider(
            t("rag.prompt_hits"),
            1,
            10,
            PROMPT_HITS,
            key=P + "prompt_hits",
            help=t("rag.prompt_hits_help"),
            persist_state="session",
        )
        force_citation = st.toggle(
            t("rag.force_citation"),
            True,
            key=P + "force_citation",
            disabled=backend != "local",
            help=t("rag.force_citation_help"),
            persist_state="session",
        )


def make_generator():
    """(generator, tokenizer or None); None when the model cannot be used (the reason is shown)."""
    if backend == "local":
        loaded = load_or_explain(llm_name) if llm_name else None
        if loaded is None:
            return None, None
        if loaded.kind != "causal-lm":
            st.error(t("rag.not_causal", model=llm_name))
            return None, None
        return LocalGenerator(loaded), loaded.tokenizer
    base_url, key = engine.settings()
    return OpenAICompatibleGenerator(base_url, st.session_state[P + "remote_model"], key), None


def gathered_files() -> list[tuple[str, bytes, str | None]]:
    files = []
    if st.session_state.get(P + "use_sample", True) and SAMPLE_PDF is not None:
        files.append((SAMPLE_PDF.name, SAMPLE_PDF.read_bytes(), None))
    if st.session_state.get(P + "use_heldout", False):
        files.append((HELDOUT_PDF.name, HELDOUT_PDF.read_bytes(), None))
    for upload in st.session_state.get(P + "uploads") or []:
        password = st.session_state.get(P + "pw." + upload.name) or None
        files.append((upload.name, upload.getvalue(), password))
    return files


def start_indexing(settings: ChunkSettings) -> None:
    files = gathered_files()
    if not files:
        st.session_state[P + "index_message"] = t("rag.nothing_to_index")
        return
    too_big = [name for name, data, _ in files if len(data) > UPLOAD_MAX_MB * 2**20]
    st.session_state[P + "index_message"] = (
        t("rag.too_big", names=", ".join(too_big), mb=UPLOAD_MAX_MB) if too_big else None
    )
    job = runner.submit(
        "rag-index",
        build_collection,
        files,
        settings,
        embed_name or "all-minilm-l6-v2",
        current_device(),
        "session",
        ocr=st.session_state.get(P + "ocr", True),
        store=store,
        store_url=store_url,
    )
    st.session_state[P + "index_job"] = job.id


# The sample is indexed on arrival, so a first-time visitor can ask a question straight away.
if collection is None and P + "index_job" not in st.session_state and SAMPLE_PDF is not None:
    start_indexing(DEFAULT_CHUNKS)


def documents_tab():
    st.toggle(
        t("rag.use_sample"),
        True,
        key=P + "use_sample",
        help=t("rag.use_sample_help", pages=pdf_page_count(SAMPLE_PDF)),
        persist_state="session",
    )
    st.toggle(
        t("rag.use_heldout"),
        False,
        key=P + "use_heldout",
        help=t("rag.use_heldout_help", pages=pdf_page_count(HELDOUT_PDF)),
        persist_state="session",
    )
    file_uploader(
        t("rag.upload"),
        type=[s.lstrip(".") for s in SUFFIXES],
        accept_multiple_files=True,
        key=P + "uploads",
        max_upload_size=UPLOAD_MAX_MB,
    )
    st.toggle(t("rag.ocr"), True, key=P + "ocr", help=t("rag.ocr_help"), persist_state="session")
    locked = [r.doc for r in (collection.reports if collection else []) if r.status == INGEST_NEEDS_PASSWORD]
    for name in locked:
        st.text_input(t("rag.password", doc=name), type="password", key=P + "pw." + name, persist_state="session")
    c1, c2, c3 = st.columns(3)
    chunk_method = c1.radio(
        t("rag.chunk_method"),
        ("characters", "tokens"),
        key=follow_language(P + "chunk_method"),
        format_func=lambda m: t("rag.chunk_method." + m),
        persist_state="session",
    )
    by_tokens = chunk_method == "tokens"
    size = c2.number_input(
        t("rag.chunk_size_tokens" if by_tokens else "rag.chunk_size"),
        1,
        8000,
        128 if by_tokens else DEFAULT_CHUNKS.size,
        key=P + "chunk_size_" + chunk_method,
        persist_state="session",
    )
    overlap = c3.number_input(
        t("rag.chunk_overlap"),
        0,
        4000,
        24 if by_tokens else DEFAULT_CHUNKS.overlap,
        key=P + "chunk_overlap_" + chunk_method,
        persist_state="session",
    )
    job = runner.get(st.session_state.get(P + "index_job"))
    busy = job is not None and not job.done
    if overlap >= size:
        st.error(t("rag.bad_overlap", overlap=overlap, size=size))
    elif st.button(t("rag.index"), type="primary", disabled=busy, key=P + "index_button"):
        start_indexing(ChunkSettings(chunk_method, int(size), int(overlap)))
    if st.session_state.get(P + "index_message"):
        st.warning(st.session_state[P + "index_message"])
    job_status(P + "index_job", lambda j: t("rag.indexing", s=f"{j.elapsed:.0f}", step=last_message(j)), index_done)
    if collection is not None:
        st.subheader(t("rag.collection_title", n=len(collection.chunks), docs=len(collection.reports)))
        views.reports_table(collection.reports, collection.chunks)
        with st.expander(t("rag.inspector"), expanded=True):
            views.chunk_inspector(collection)
    views.collections_panel(collection, store, store_url)


def last_message(job) -> str:
    events = job.events_since(0)
    return events[-1].message if events else ""


def index_done(job):
    if job.status == FAILED:
        st.error(t("rag.index_failed", error=job.error))
    elif job.status != DONE:
        st.info(t("rag.index_stopped"))


def search(question: str, how: str, k: int):
    if use_rerank and can_rerank:  # the cross-encoder re-orders a wider candidate list
        return rerank(
            question, collection.search(question, method=how, k=max(20, k)), DEFAULT_RERANKER, current_device(), k
        )
    return collection.search(question, method=how, k=k)


def chat_tab():
    if collection is None:
        st.info(t("rag.index_first"))
        return
    turns: list[pipeline.Turn] = st.session_state.setdefault(P + "turns", [])
    compare = st.toggle(
        t("rag.compare"), False, key=P + "compare", help=t("rag.compare_help"), persist_state="session"
    )
    if turns and st.button(t("rag.clear_chat"), key=P + "clear"):
        st.session_state[P + "turns"] = []
        st.rerun()
    views.language_note(embed_name, llm_name if backend == "local" else None)
    for turn in turns:
        views.show_turn(turn)
    question = st.chat_input(t("rag.ask"), key=P + "ask")
    if not question or not question.strip():
        return
    generator, tokenizer = make_generator()
    if generator is None:
        return
    with st.chat_message("user"):
        st.markdown(question)
    if not allow("ask"):
        return
    try:
        with st.spinner(t("rag.retrieving")), queue_status():
            turn = pipeline.prepare_turn(
                search,
                generator,
                turns,
                question.strip(),
                method,
                top_k,
                weak_threshold,
                tokenizer,
                compare,
                collection.embed_texts,
                prompt_hits,
                force_citation=force_citation,
            )
        answer, baseline = views.live_answer(turn, generator, compare, max_new)
    except GeneratorError as exc:
        st.error(str(exc))
        return
    turns.append(pipeline.finish_turn(turn, answer, baseline))
    st.rerun()


def retrieval_tab():
    views.retrieval_tab(collection, method, top_k, weak_threshold)


def evaluate_tab():
    views.evaluate_tab(
        collection,
        search,
        make_generator,
        EVAL_SETS,
        method=method,
        top_k=top_k,
        max_new=max_new,
        prompt_hits=prompt_hits,
        force_citation=force_citation,
    )


tabs = st.tabs(
    [t("rag.tab.documents"), t("rag.tab.chat"), t("rag.tab.retrieval"), t("rag.tab.evaluate")],
    key=P + "tab",
    on_change="rerun",
)
for tab, render in zip(tabs, (documents_tab, chat_tab, retrieval_tab, evaluate_tab)):
    if tab.open:
        with tab:
            render()

experiments_panel("rag")
