"""The encoder-decoder tab: the task (pinyin by default, or couplets), training (background job,
live loss), greedy vs beam search on a typed half-line, the cross-attention heatmap, the held-out
table and scores, the export."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backends import architectures as arch
from backends.core.jobs import FAILED, STOPPED, shared_runner
from components.architectures.charts import loss_figure
from components.backend_text import said
from components.guard import queue_status
from components.i18n import t
from components.job_status import newly_finished
from components.live_job import live_panel
from components.option_labels import follow_language

P = "architectures.seq2seq."


TASKS = ("pinyin", "couplet")


def start(task: str, steps: int, beam: int) -> None:
    config, settings = arch.TASK_DEFAULTS[task]
    settings = type(settings).from_dict({**settings.to_dict(), "max_iters": steps, "lr_decay_iters": steps})
    job = shared_runner().submit("architectures.seq2seq", arch.seq2seq_job, config, settings, beam, True, task)
    st.session_state[P + "job"] = job.id
    st.session_state.pop(P + "exported", None)


def take_finished(job=None) -> None:
    job = job or newly_finished(P + "job")
    if job is not None and job.result is not None:
        run, job.result = job.result, None  # the model lives in this session only
        st.session_state[P + "run." + run.task] = run


def samples_table(samples: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            t(P + "col.input"): [s["src"] for s in samples],
            t(P + "col.reference"): [s["ref"] for s in samples],
            t(P + "col.output"): [s["out"] for s in samples],
        }
    )


def live(task: str) -> None:
    def progress(job, events):
        scoring = any(e.data.get("kind") == "scoring" for e in events)
        return job.progress or 0.0, t(P + ("scoring" if scoring else "training"))

    def draw(job, events):
        data = [e.data for e in events]
        run = st.session_state.get(P + "run." + task)
        if run is not None and job.done and job.status != FAILED:
            done = t(
                P + "done",
                steps=run.step,
                best=run.best_step,
                val=f"{run.val_loss:.3f}",
                s=f"{run.seconds:.0f}",
                cpu=f"{run.cpu_seconds:.0f}",
            )
            (st.warning if job.status == STOPPED else st.success)(done)
        fig = loss_figure(data, P)
        if run is not None and job.done:
            fig.add_vline(x=run.best_step, line_dash="dot", line_color="gray", annotation_text=t(P + "chart.best"))
        st.plotly_chart(fig, key=P + "chart")
        evals = [e for e in data if e.get("kind") == "eval"]
        if evals and evals[-1].get("samples"):
            st.caption(t(P + "samples", step=evals[-1]["step"]))
            st.dataframe(samples_table(evals[-1]["samples"]), hide_index=True)

    live_panel(P, take_finished, progress, draw)


def decode_section(run) -> None:
    st.markdown(t(P + f"try.title.{run.task}"))
    c1, c2 = st.columns([2, 1])
    with c1:
        text = st.text_input(
            t(P + f"try.input.{run.task}"), value="白日依山尽", max_chars=20, key=P + "input", persist_state="session"
        )
    with c2:
        width = st.slider(t(P + "try.beam"), 2, 8, arch.DEFAULT_BEAM, key=P + "beam", persist_state="session")
    try:
        with queue_status():
            greedy = arch.translate(run.model, run.vocab, text, beam=1)
            beam = arch.translate(run.model, run.vocab, text, beam=width)
    except arch.CoupletInputError as exc:
        st.warning(said(exc, P + "error."))
        return
    left, right = st.columns(2)
    left.metric(t(P + "try.greedy"), greedy.text or "∅", t(P + "try.logprob", lp=f"{greedy.logprob:.2f}"))
    right.metric(
        t(P + "try.beam_out", k=width),
        beam.text or "∅",
        t(P + "try.beam_score", lp=f"{beam.logprob:.2f}", score=f"{beam.score:.2f}"),
    )
    st.caption(t(P + "try.explain"))
    attention_section(run, text, {"greedy": greedy.text, "beam": beam.text})


def attention_section(run, text: str, outputs: dict[str, str]) -> None:
    st.markdown(t(P + "attn.title"))
    src = "".join(text.split()).strip("，。？！；、：,.?!;:")
    c1, c2, c3 = st.columns(3)
    which = c1.radio(
        t(P + "attn.output"),
        list(outputs),
        format_func=lambda k: t(P + f"attn.{k}"),
        key=follow_language(P + "attn.which"),
        horizontal=True,
        persist_state="session",
    )
    n_layer, n_head = run.config.n_layer, run.config.n_head
    layer = c2.selectbox(t(P + "attn.layer"), list(range(n_layer)), key=P + "attn.layer", persist_state="session")
    head = c3.selectbox(
        t(P + "attn.head"),
        ["mean", *range(n_head)],
        format_func=lambda h: t(P + "attn.mean") if h == "mean" else str(h),
        key=follow_language(P + "attn.head"),
        persist_state="session",
    )
    out = outputs[which]
    with queue_status():
        maps = arch.cross_attention_map(run.model, run.vocab, src, out)
    weights = maps[layer].mean(0) if head == "mean" else maps[layer, head]
    rows = [c if c != " " else "␣" for c in out] + ["⟨/s⟩"]  # plotly would read "</s>" as an HTML tag
    fig = go.Figure(
        go.Heatmap(
            z=weights.tolist(),
            x=[f"{i}:{c}" for i, c in enumerate(src)],
            y=[f"{i}:{c}" for i, c in enumerate(rows)],
            colorscale="Purples",
            zmin=0,
            zmax=1,
        )
    )
    fig.update_layout(
        height=120 + max(16, min(36, 900 // len(rows))) * len(rows),
        margin={"t": 20, "b": 40},
        xaxis_title=t(P + "attn.inputs"),
        yaxis={"autorange": "reversed", "title": t(P + "attn.outputs")},
    )
    st.plotly_chart(fig, key=P + "attn.chart")
    st.caption(t(P + f"attn.explain.{run.task}"))


def held_out_section(run) -> None:
    st.markdown(t(P + "held.title"))
    if run.table is None:
        st.info(t(P + "held.missing"))
        if st.button(t(P + "held.score"), key=P + "held.score"):
            with queue_status(), st.spinner(t(P + "scoring")):
                _, held = arch.task_pairs(run.task)
                run.table, run.scores = arch.score_held_out(run.model, run.vocab, held, run.beam)
            st.rerun()
        return
    s = run.scores
    shown = (("exact", "{:.1%}"), ("chrf", "{:.1f}"), ("length", "{:.0%}"))
    for col, (name, form) in zip(st.columns(3), shown):
        beam_value = t(P + "held.beam_delta", v=form.format(s["beam_" + name]))
        label = t(P + f"held.length.{run.task}") if name == "length" else t(P + "held." + name)
        col.metric(label, form.format(s["greedy_" + name]), beam_value, delta_color="off")
    st.caption(t(P + f"held.explain.{run.task}", n=s["n"], k=s["beam_width"]))
    frame = pd.DataFrame(
        {
            t(P + "col.input"): [r["src"] for r in run.table],
            t(P + "col.reference"): [r["ref"] for r in run.table],
            t(P + "col.greedy"): [r["greedy"] for r in run.table],
            t(P + "col.beam"): [r["beam"] for r in run.table],
            t(P + "col.greedy_chrf"): [round(r["greedy_chrf"], 1) for r in run.table],
            t(P + "col.beam_chrf"): [round(r["beam_chrf"], 1) for r in run.table],
        }
    )
    st.dataframe(frame, hide_index=True, height=320)


def export_section(run) -> None:
    st.markdown(t(P + "export.title"))
    st.caption(t(P + "export.explain"))
    if st.button(t(P + "export"), key=P + "export_btn", icon=":material/download:"):
        try:
            folder = arch.seq2seq_folder(f"seq2seq-{run.task}")
            folder = arch.export_seq2seq(run.model, run.vocab, folder, {"task": run.task, "scores": run.scores})
            st.session_state[P + "exported"] = str(folder)
        except (OSError, RuntimeError) as exc:
            st.error(t(P + "export.failed", error=str(exc)))
    if st.session_state.get(P + "exported"):
        folder = st.session_state[P + "exported"]
        st.success(t(P + "export.done"))
        st.code(arch.seq2seq_snippet(folder), language="python")


def render() -> None:
    task = st.radio(
        t(P + "task"),
        TASKS,
        format_func=lambda k: t(P + f"task.{k}"),
        key=follow_language(P + "task"),
        horizontal=True,
        persist_state="session",
    )
    st.markdown(t(P + f"intro.{task}"))
    train, held = arch.task_pairs(task)
    st.caption(t(P + f"data.{task}", train=len(train), held=len(held), poems=len({p.poem for p in held})))
    with st.expander(t(P + "model.title")):
        st.markdown(t(P + "model.body"))
    take_finished()
    c1, c2 = st.columns(2)
    default_steps = arch.TASK_DEFAULTS[task][1].max_iters
    steps = c1.number_input(
        t(P + "steps"), 50, 5000, default_steps, step=50, key=P + f"steps.{task}", persist_state="session"
    )
    beam = c2.slider(t(P + "held.beam"), 2, 8, arch.DEFAULT_BEAM, key=P + "held_beam", persist_state="session")
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "train"), key=P + "train", type="primary", disabled=running, icon=":material/play_arrow:"):
        start(task, int(steps), int(beam))
        st.rerun()
    live(task)
    run = st.session_state.get(P + "run." + task)
    if run is None:
        st.info(t(P + "no_model"))
        return
    st.caption(t(P + "model", params=f"{run.model.num_params():,}", vocab=run.vocab.size))
    decode_section(run)
    held_out_section(run)
    export_section(run)
