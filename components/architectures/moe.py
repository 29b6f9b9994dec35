"""The mixture-of-experts tab: train a dense GPT and a MoE GPT side by side (live loss curves), their
parameter counts (active vs total), which expert each token goes to (tokens x layers) and the load."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from backends import architectures as arch
from backends.core.jobs import shared_runner
from backends.scratch_gpt import CORPORA, load_corpus, prepare
from components.architectures.charts import loss_figure
from components.guard import queue_status
from components.i18n import t
from components.job_status import newly_finished
from components.live_job import live_panel
from components.option_labels import follow_language

P = "architectures.moe."
MODELS = ("dense", "moe")
COLORS = {"dense": "#1971c2", "moe": "#e8590c"}
EXPERT_COLORS = ("#6c4cf4", "#e8590c", "#2b8a3e", "#c2255c", "#1971c2", "#e67700", "#087f5b", "#5f3dc4")
EXAMPLES = {
    "shakespeare": "ROMEO:\nBut soft, what light through yonder window breaks?",
    "tang_song": "床前明月光，疑是地上霜。",
}


def start(corpus: str, steps: int) -> None:
    config, settings = arch.MOE_CONFIG, arch.MOE_SETTINGS
    settings = type(settings).from_dict({**settings.to_dict(), "max_iters": steps, "lr_decay_iters": steps})
    prepared = prepare(corpus, load_corpus(corpus), config.block_size)
    job = shared_runner().submit("architectures.moe", arch.moe_job, prepared, config, settings)
    st.session_state[P + "job"] = job.id


def take_finished(job=None) -> None:
    job = job or newly_finished(P + "job")
    if job is not None and job.result is not None:
        st.session_state[P + "run"], job.result = job.result, None


def live() -> None:
    def progress(job, events):
        return job.progress or 0.0, t(P + "training")

    def draw(job, events):
        data = [e.data for e in events]
        evals = [e["val_loss"] for e in data if e.get("kind") == "eval"]
        top = max(evals) + 0.2 if evals else None  # the same y axis on both charts
        for col, model in zip(st.columns(2), MODELS, strict=True):
            with col:
                fig = loss_figure(data, P, model, COLORS[model])
                fig.update_layout(
                    title=t(P + f"model.{model}"),
                    height=300,
                    margin={"t": 40, "b": 40},
                    yaxis_range=[1.0, top] if top else None,
                    legend={"orientation": "h", "y": -0.3},
                )
                st.plotly_chart(fig, key=P + f"chart.{model}")

    live_panel(P, take_finished, progress, draw)


def results(run) -> None:
    p = run.params
    c = st.columns(4)
    c[0].metric(t(P + "metric.dense_val"), f"{run.val_loss('dense'):.3f}")
    c[1].metric(t(P + "metric.moe_val"), f"{run.val_loss('moe'):.3f}")
    c[2].metric(t(P + "metric.dense_s"), f"{run.seconds['dense']:.0f} s")
    c[3].metric(t(P + "metric.moe_s"), f"{run.seconds['moe']:.0f} s")
    st.markdown(t(P + "params.title"))
    st.table(
        {
            t(P + "params.model"): [t(P + "model.dense"), t(P + "model.moe")],
            t(P + "params.active"): [f"{p['dense_active']:,}", f"{p['moe_active']:,}"],
            t(P + "params.total"): [f"{p['dense_total']:,}", f"{p['moe_total']:,}"],
        }
    )
    st.caption(t(P + "params.note", n=run.n_experts, k=run.top_k))


def routing_section(run) -> None:
    st.markdown(t(P + "routing.title"))
    text = st.text_input(
        t(P + "routing.input"),
        value=EXAMPLES.get(run.corpus, ""),
        key=P + "routing." + run.corpus,
        persist_state="session",
    )
    if not text.strip():
        st.warning(t(P + "routing.empty"))
        return
    unknown = run.tokenizer.unknown(text)
    if unknown:
        st.warning(t(P + "routing.unknown", chars=" ".join(unknown)))
    with queue_status():
        got = arch.routing(run.moe, run.tokenizer, text)
    labels = ["⏎" if c == chr(10) else "␣" if c == " " else c for c in got["tokens"]]
    n = run.n_experts
    scale = []
    for e in range(n):  # one flat colour per expert
        scale += [[e / n, EXPERT_COLORS[e % len(EXPERT_COLORS)]], [(e + 1) / n, EXPERT_COLORS[e % len(EXPERT_COLORS)]]]
    hover = [[t(P + "routing.hover", experts=", ".join(map(str, ks))) for ks in layer] for layer in got["experts"]]
    fig = go.Figure(
        go.Heatmap(
            z=got["top1"],
            x=list(range(len(labels))),
            y=[t(P + "routing.layer", n=i + 1) for i in range(len(got["top1"]))],
            zmin=-0.5,
            zmax=n - 0.5,
            colorscale=scale,
            text=hover,
            customdata=[labels] * len(got["top1"]),
            hovertemplate="%{x}: %{customdata} · %{y}<br>%{text}<extra></extra>",
            colorbar={"title": t(P + "routing.expert"), "tickvals": list(range(n))},
        )
    )
    fig.update_layout(
        height=140 + 50 * len(got["top1"]),
        margin={"t": 20, "b": 40},
        xaxis={"tickangle": 0, "tickmode": "array", "tickvals": list(range(len(labels))), "ticktext": labels},
    )
    st.plotly_chart(fig, key=P + "routing.heatmap")
    st.caption(t(P + "routing.caption"))
    st.markdown(t(P + "load.title"))
    load = go.Figure()
    for layer, shares in enumerate(got["shares"]):
        load.add_bar(
            x=[t(P + "routing.expert_n", n=e) for e in range(n)], y=shares, name=t(P + "routing.layer", n=layer + 1)
        )
    load.add_hline(y=1 / n, line_dash="dash", line_color="gray", annotation_text=t(P + "load.even"))
    load.update_layout(barmode="group", height=280, margin={"t": 20, "b": 40}, yaxis={"tickformat": ".0%"})
    st.plotly_chart(load, key=P + "load")


def render() -> None:
    st.markdown(t(P + "intro"))
    take_finished()
    c1, c2 = st.columns(2)
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
            t(P + "steps"),
            50,
            5000,
            arch.moe_settings(corpus).max_iters,
            step=50,
            key=P + "steps." + corpus,
            persist_state="session",
        )
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "train"), key=P + "train", type="primary", disabled=running, icon=":material/play_arrow:"):
        start(corpus, int(steps))
        st.rerun()
    live()
    run = st.session_state.get(P + "run")
    if run is None:
        st.info(t(P + "no_model"))
        return
    results(run)
    routing_section(run)
