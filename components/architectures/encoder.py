"""The encoder tab: train a masked-LM encoder (background job, live loss), fill in blanks with its top-5
guesses, the bidirectional vs causal attention masks side by side, and the export to BERT."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from backends import architectures as arch
from backends.core.jobs import shared_runner
from backends.scratch_gpt import CORPORA, load_corpus, prepare
from components.architectures.charts import loss_figure
from components.backend_text import said
from components.guard import queue_status
from components.i18n import t
from components.job_status import newly_finished
from components.live_job import live_panel
from components.model_picker import add_session_model
from components.option_labels import follow_language

P = "architectures.encoder."
EXAMPLES = {
    "shakespeare": "To be, or not to b_, that is th_",
    "tang_song": "床前明月光，疑是地上霜。举头望明_，低头思故_。",
}


def start(corpus: str, steps: int) -> None:
    config, settings = arch.MLM_CONFIG, arch.MLM_SETTINGS
    settings = type(settings).from_dict({**settings.to_dict(), "max_iters": steps, "lr_decay_iters": steps})
    prepared = prepare(corpus, load_corpus(corpus), config.block_size)
    job = shared_runner().submit("architectures.mlm", arch.mlm_job, prepared, config, settings)
    st.session_state[P + "job"] = job.id
    st.session_state.pop(P + "exported", None)


def take_finished(job=None) -> None:
    """Keep a finished run's model in this session (once: newly_finished), from the live panel or the tab."""
    job = job or newly_finished(P + "job")
    if job is not None and job.result is not None:
        st.session_state[P + "run"], job.result = job.result, None  # the model lives in this session only


def live() -> None:
    def progress(job, events):
        return job.progress or 0.0, t(P + "training")

    def draw(job, events):
        run = st.session_state.get(P + "run")
        if run is not None and job.done:
            st.success(
                t(
                    P + "done",
                    steps=run.step,
                    val=f"{run.val_loss:.3f}",
                    uni=f"{run.unigram_loss:.3f}",
                    s=f"{run.seconds:.0f}",
                )
            )
        data = [e.data for e in events]
        fig = loss_figure(data, P)
        evals = [e for e in data if e.get("kind") == "eval"]
        if evals:
            fig.add_hline(
                y=evals[0]["unigram"], line_dash="dash", line_color="gray", annotation_text=t(P + "chart.unigram")
            )
        st.plotly_chart(fig, key=P + "chart")

    live_panel(P, take_finished, progress, draw)


def fill_section(run) -> None:
    st.markdown(t(P + "fill.title"))
    text = st.text_input(
        t(P + "fill.input"), value=EXAMPLES.get(run.corpus, "_"), key=P + "fill." + run.corpus, persist_state="session"
    )
    try:
        with queue_status():
            blanks = arch.fill_mask(run.model, run.vocab, text, top_k=5)
    except ValueError as exc:
        st.warning(said(exc, P + "error."))
        return
    cols = st.columns(min(len(blanks), 4))
    for n, blank in enumerate(blanks):
        with cols[n % len(cols)]:
            st.caption(t(P + "fill.blank", n=n + 1, pos=blank.position))
            chars = ["␣" if c == " " else repr(c)[1:-1] if c.isspace() else c for c, _ in blank.predictions]
            fig = go.Figure(go.Bar(x=[p for _, p in blank.predictions][::-1], y=chars[::-1], orientation="h"))
            fig.update_layout(
                height=220,
                margin={"t": 10, "b": 40, "l": 10, "r": 10},
                xaxis={"range": [0, 1], "title": t(P + "fill.prob")},
            )
            st.plotly_chart(fig, key=P + f"fill.bar{n}")


def masks_section() -> None:
    st.markdown(t(P + "masks.title"))
    st.caption(t(P + "masks.body"))
    masks = arch.attention_masks(10)
    for col, name in zip(st.columns(2), ("bidirectional", "causal"), strict=True):
        with col:
            fig = go.Figure(
                go.Heatmap(
                    z=[[int(v) for v in row] for row in masks[name]],
                    colorscale=[[0, "#f1f3f5"], [1, "#6c4cf4"]],
                    zmin=0,
                    zmax=1,
                )
            )
            fig.update_layout(
                title=t(P + f"masks.{name}"),
                height=300,
                margin={"t": 40, "b": 30},
                yaxis={"autorange": "reversed", "title": t(P + "masks.query")},
                xaxis_title=t(P + "masks.key"),
            )
            fig.update_traces(showscale=False)
            st.plotly_chart(fig, key=P + f"mask.{name}")


def export_section(run) -> None:
    if st.button(t(P + "export"), key=P + "export_btn", icon=":material/download:"):
        try:
            folder = arch.export_bert(run.model, run.vocab, arch.bert_folder(run.corpus))
            st.session_state[P + "exported"] = str(folder)
            add_session_model(f"scratch_gpt/{folder.name}", str(folder), kind="encoder")  # the Attention page's picker
        except (OSError, RuntimeError) as exc:
            st.error(t(P + "export.failed", error=str(exc)))
    if st.session_state.get(P + "exported"):
        st.success(t(P + "export.done"))
        st.code(st.session_state[P + "exported"], language=None)


def render() -> None:
    st.markdown(t(P + "intro"))
    take_finished()
    c1, c2 = st.columns([1, 1])
    with c1:
        corpus = st.radio(
            t(P + "corpus"),
            list(CORPORA),
            key=follow_language(P + "corpus"),
            format_func=lambda k: t(f"scratch_gpt.corpus.{k}"),
            horizontal=True,
            persist_state="session",
        )
    with c2:
        steps = st.number_input(
            t(P + "steps"), 50, 5000, arch.MLM_SETTINGS.max_iters, step=50, key=P + "steps", persist_state="session"
        )
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "train"), key=P + "train", type="primary", disabled=running, icon=":material/play_arrow:"):
        start(corpus, int(steps))
        st.rerun()
    live()
    masks_section()
    run = st.session_state.get(P + "run")
    if run is None:
        st.info(t(P + "no_model"))
        return
    st.caption(t(P + "model", corpus=t(f"scratch_gpt.corpus.{run.corpus}"), params=f"{run.model.num_params():,}"))
    fill_section(run)
    export_section(run)
