"""The tokenizer page's training tab: train a tokenizer on a corpus, then add it to the comparison or download it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backends.core.jobs import DONE, shared_runner
from backends.tokenizers import merges, training
from backends.tokenizers import tokenization as tz
from components.builtin_text import file_uploader
from components.i18n import t
from components.job_status import job_status
from components.option_labels import follow_language
from components.show_code import show_code
from components.token_chips import visible_whitespace
from components.tokenizers.session import UPLOAD_MAX_MB, trained

P = "tok."


def train_tab(text: str) -> None:
    """Train a tokenizer (BPE, WordPiece, Unigram, SentencePiece) on a corpus as a job; show what it learned."""
    st.markdown(t("tok.train_intro"))
    source = st.radio(
        t("tok.corpus"),
        ["sample", "text", "upload"],
        horizontal=True,
        key=follow_language(P + "corpus_source"),
        format_func=lambda s: t(f"tok.corpus.{s}"),
        persist_state="session",
    )
    corpus = ""
    if source == "sample":
        corpus = training.sample_corpus()
    elif source == "text":
        corpus = text
    else:
        file = file_uploader(
            t("tok.corpus_upload"), type=["txt", "md"], key=P + "corpus_file", max_upload_size=UPLOAD_MAX_MB
        )
        if file is not None:
            if file.size > UPLOAD_MAX_MB * 2**20:
                st.error(t("tok.upload_too_big", mb=UPLOAD_MAX_MB, size=f"{file.size / 2**20:.1f}"))
            else:
                corpus, warning = tz.decode_upload(file.getvalue())
                if warning:
                    st.warning(warning)
    st.caption(t("tok.corpus_size", chars=len(corpus)))
    k1, k2 = st.columns(2)
    kind = k1.selectbox(
        t("tok.kind"),
        training.KINDS,
        key=follow_language(P + "kind"),
        format_func=lambda k: t(f"tok.kind.{k}"),
        persist_state="session",
    )
    vocab = k2.slider(t("tok.vocab_size"), 100, 8000, 600, step=50, key=P + "vocab", persist_state="session")
    runner = shared_runner()
    job = runner.get(st.session_state.get(P + "train_job"))
    if st.button(t("tok.train"), type="primary", key=P + "train_button", disabled=job is not None and not job.done):
        if not corpus.strip():
            st.warning(t("tok.corpus_empty"))
        else:
            job = runner.submit("train-tokenizer", training.train_job, kind, corpus, int(vocab))
            st.session_state[P + "train_job"] = job.id
    job_status(P + "train_job", lambda job: t("tok.training", s=f"{job.elapsed:.1f}"), trained_result)


def trained_result(job):
    if job.status == DONE:
        show_trained(job.result)
    else:
        st.error(job.error or job.status)


def add_trained(result):
    """A callback, so it runs before the multiselect it changes is drawn. The button sits in the job's
    fragment, whose rerun would not redraw the comparison: show_trained asks for a full rerun."""
    trained()[result.tok.name] = result
    st.session_state[P + "chosen"] = [*st.session_state[P + "chosen"], result.tok.name]
    st.session_state[P + "tab"] = t("tok.tab.compare")
    st.session_state[P + "added"] = True


def show_trained(result):
    if st.session_state.pop(P + "added", False):
        st.rerun(scope="app")  # the comparison (outside this fragment) shows the new tokenizer at once
    st.success(
        t(
            "tok.trained",
            kind=result.kind,
            got=result.vocab_size,
            asked=result.requested_vocab_size,
            s=f"{result.seconds:.2f}",
        )
    )
    if result.note:
        st.info(result.note)
    name = result.tok.name
    a1, a2 = st.columns(2)
    a1.button(
        t("tok.add_to_compare"),
        key=P + f"add.{name}",
        disabled=name in trained(),
        on_click=add_trained,
        args=(result,),
    )
    a2.download_button(
        t("tok.download", file=result.file_name),
        result.to_bytes(),
        file_name=result.file_name,
        key=P + f"download.{name}",
    )
    if result.merges:
        st.markdown(t("tok.merges", n=len(result.merges)))
        ws = visible_whitespace  # a merge of " " + "t" must show its space
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "#": m.rank + 1,
                        t("tok.merge.pair"): f"{ws(m.left)} + {ws(m.right)}",
                        t("tok.merge.new"): ws(m.new),
                        t("tok.merge.count"): m.count,
                    }
                    for m in result.merges
                ]
            ),
            hide_index=True,
            key=P + f"merges.{name}",
        )
    show_code(training.train, merges.merge_counts)
