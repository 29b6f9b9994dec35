"""The distillation tab: a small GPT on SmolLM2's vocabulary trained twice, on hard labels and on
SmolLM2's soft targets (temperature, KL), at the same steps and data; the two learning curves side by
side, the final validation losses and the teacher's own, and the exported students offered to the
comparable table (backends/compression/distill.py does the work)."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from backends import compression as cp
from backends.core.jobs import shared_runner
from components.i18n import t
from components.live_job import live_panel
from components.model_picker import add_session_model
from components.option_labels import follow_language

P = "compression.distill."
# student size -> (layers, heads, width)
SIZES = {"small": (2, 4, 128), "wide": (2, 4, 192), "deep": (4, 4, 128)}
COLOURS = {"train": "#1971c2", "val": "#e8590c"}
TABLE_MODEL = "compression.model"  # the table tab's model picker


def controls() -> cp.DistillSettings:
    d = cp.DistillSettings()
    c = st.columns(4)
    steps = c[0].slider(t(P + "steps"), 20, 300, d.steps, 10, key=P + "steps", persist_state="session")
    temp = c[1].select_slider(
        t(P + "temperature"),
        list(cp.DISTILL_TEMPERATURES),
        d.temperature,
        key=P + "temperature",
        persist_state="session",
    )
    alpha = c[2].slider(t(P + "alpha"), 0.0, 1.0, d.alpha, 0.05, key=P + "alpha", persist_state="session")
    with c[3]:
        size = st.radio(
            t(P + "size"),
            list(SIZES),
            key=follow_language(P + "size"),
            format_func=lambda s: t(P + "size." + s, layers=SIZES[s][0], width=SIZES[s][2]),
            persist_state="session",
        )
    st.caption(
        t(
            P + "settings_note",
            windows=d.train_windows,
            tokens=d.train_windows * (d.block_size + 1),
            val=d.val_windows * d.block_size,
            block=d.block_size,
            batch=d.batch_size,
            k=d.top_k,
        )
    )
    layers, heads, width = SIZES[size]
    return cp.DistillSettings(
        steps=int(steps),
        temperature=float(temp),
        alpha=float(alpha),
        n_layer=layers,
        n_head=heads,
        n_embd=width,
        eval_interval=max(10, int(steps) // 6),
    )


def start(settings: cp.DistillSettings) -> None:
    job = shared_runner().submit("compression.distill", cp.distill_job, settings)
    st.session_state[P + "job"] = job.id


def take_finished(job) -> None:
    if job is not None and job.result is not None:
        result, job.result = job.result, None
        result.students = {}  # the page needs the curves and the folders, not the models
        st.session_state[P + "result"] = result
        for name, folder in result.folders.items():
            add_session_model(cp.DISTILL_FOLDERS[name], folder)


def curves_figure(evals: list[dict], student: str, teacher: float | None, y_range) -> go.Figure:
    rows = [e for e in evals if e["student"] == student]
    fig = go.Figure()
    for part in ("train", "val"):
        fig.add_scatter(
            x=[e["step"] for e in rows],
            y=[e[part + "_loss"] for e in rows],
            mode="lines+markers",
            name=t(P + "chart." + part),
            line={"color": COLOURS[part]},
        )
    if teacher is not None:
        fig.add_hline(
            y=teacher,
            line_dash="dash",
            line_color="#495057",
            annotation_text=t(P + "chart.teacher"),
            annotation_position="top right",
        )
    fig.update_layout(
        title=t(P + "chart.title." + student),
        height=340,
        margin={"t": 50, "b": 40},
        xaxis_title=t(P + "chart.step"),
        yaxis_title=t(P + "chart.loss"),
        yaxis={"range": y_range},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def curves(evals: list[dict], teacher: float | None, key: str) -> None:
    """Both students' train and validation loss, side by side on the same axis."""
    if not evals:
        return
    values = [e[p] for e in evals for p in ("train_loss", "val_loss")] + ([teacher] if teacher else [])
    y_range = [min(values) - 0.2, max(values) + 0.2]
    left, right = st.columns(2)
    left.plotly_chart(curves_figure(evals, "hard", teacher, y_range), key=key + "hard")
    right.plotly_chart(curves_figure(evals, "kd", teacher, y_range), key=key + "kd")


def live() -> None:
    def progress(job, events):
        last = events[-1].data if events else {}
        if last.get("kind") == "teacher":
            return job.progress or 0.0, t(P + "running.teacher", done=last["done"], total=last["total"])
        steps = [e.data["step"] for e in events if e.data.get("kind") == "step"]
        return job.progress or 0.0, t(P + "running.step", step=steps[-1] if steps else 0, s=f"{job.elapsed:.0f}")

    def draw(job, events):
        if job.done:
            return
        curves([e.data for e in events if e.data.get("kind") == "eval"], None, P + "live_")

    live_panel(P, take_finished, progress, draw)


def use_in_table(folder: str) -> None:
    st.session_state[TABLE_MODEL] = folder


def results(r: cp.DistillResult) -> None:
    s = r.settings
    c = st.columns(3)
    kd, hard = r.kd_val_loss, r.hard_val_loss
    c[0].metric(
        t(P + "metric.kd"),
        f"{kd:.3f}",
        f"{kd - hard:+.3f}",
        delta_color="inverse",
        help=t(P + "metric.ppl", ppl=f"{math.exp(kd):.0f}"),
    )
    c[1].metric(t(P + "metric.hard"), f"{hard:.3f}", help=t(P + "metric.ppl", ppl=f"{math.exp(hard):.0f}"))
    c[2].metric(
        t(P + "metric.teacher"),
        f"{r.teacher_val_loss:.3f}",
        help=t(P + "metric.ppl", ppl=f"{math.exp(r.teacher_val_loss):.0f}"),
    )
    st.caption(
        t(
            P + "measured",
            steps=r.steps,
            T=s.temperature,
            alpha=s.alpha,
            params=f"{r.params / 1e6:.1f}",
            layers=s.n_layer,
            width=s.n_embd,
            kd_s=f"{r.train_seconds.get('kd', 0):.0f}",
            hard_s=f"{r.train_seconds.get('hard', 0):.0f}",
            teacher=t(P + "teacher_cached") if r.teacher_cached else t(P + "teacher_s", s=f"{r.teacher_seconds:.0f}"),
        )
    )
    if r.stopped:
        st.warning(t(P + "stopped"))
    curves(r.history, r.teacher_val_loss, P + "result_")
    st.caption(t(P + "curves_note", n=min(s.train_eval_windows, s.train_windows)))
    if r.folders:
        st.markdown(t(P + "exported"))
        cols = st.columns(len(r.folders))
        for col, (name, folder) in zip(cols, r.folders.items(), strict=True):
            col.code(folder, language=None)
            col.button(
                t(P + "use." + name),
                key=P + "use_" + name,
                on_click=use_in_table,
                args=(folder,),
                icon=":material/table_chart:",
            )
        st.caption(t(P + "exported_note", block=s.block_size))


def render() -> None:
    st.markdown(t(P + "intro"))
    settings = controls()
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "run"), key=P + "run", type="primary", disabled=running, icon=":material/play_arrow:"):
        start(settings)
        st.rerun()
    live()
    result = st.session_state.get(P + "result")
    if result is None:
        st.info(t(P + "no_run"))
        return
    results(result)
