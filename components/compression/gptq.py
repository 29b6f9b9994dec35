"""The GPTQ tab: one linear layer of SmolLM2 or the demo GPT quantized to int4 (or int3) in groups, by
round-to-nearest and by GPTQ written out by hand, as a background job: the layer's output error of both
on the calibration text and on held-out text, the Hessian's diagonal (how loud each input is), each input
column's weight error under both, and what GPTQ does differently."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from backends import compression as cp
from backends import quantization as q
from backends.core.jobs import shared_runner
from components.i18n import t
from components.job_status import newly_finished
from components.live_job import live_panel
from components.option_labels import follow_language

P = "compression.gptq."
SMOL = "smollm2-135m-instruct"
MODELS = (SMOL, q.DEMO_GPT_NAME)
# (decoder blocks, the linear layers of a block) of the two models offered
LAYERS = {
    SMOL: (
        30,
        (
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        ),
    ),
    q.DEMO_GPT_NAME: (2, ("attention.query_key_value", "attention.dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h")),
}
GROUPS = (32, 64)  # both divide every input width of the two models (576, 1536; 256, 1024)
RTN, GPTQ = "#e8590c", "#2b8a3e"


def model_key(model: str) -> str:
    return "demo" if model == q.DEMO_GPT_NAME else "smollm2"


def controls() -> dict:
    a, b = st.columns([1, 2])
    with a:
        model = st.radio(
            t(P + "model"),
            MODELS,
            key=follow_language(P + "model"),
            format_func=lambda m: t(P + "model." + model_key(m)),
            persist_state="session",
        )
    blocks, names = LAYERS[model]
    with b:
        c = st.columns(2)
        block = c[0].number_input(
            t(P + "block"), 0, blocks - 1, 0, key=P + "block." + model_key(model), persist_state="session"
        )
        suffix = c[1].selectbox(
            t(P + "layer"), names, index=len(names) - 1, key=P + "layer." + model_key(model), persist_state="session"
        )
    c = st.columns(3)
    bits = c[0].radio(t(P + "bits"), (4, 3), horizontal=True, key=P + "bits", persist_state="session")
    group = c[1].radio(t(P + "group"), GROUPS, index=1, horizontal=True, key=P + "group", persist_state="session")
    with c[2]:
        act_order = st.toggle(t(P + "act_order"), value=False, key=P + "act_order", persist_state="session")
    st.caption(t(P + "model_note." + model_key(model)))
    return {
        "model": model,
        "block": int(block),
        "suffix": suffix,
        "bits": int(bits),
        "group": int(group),
        "act_order": bool(act_order),
    }


def start(choice: dict) -> None:
    job = shared_runner().submit(
        "compression.gptq",
        cp.compare_layer_job,
        choice["model"],
        choice["block"],
        choice["suffix"],
        choice["bits"],
        choice["group"],
        choice["act_order"],
    )
    st.session_state[P + "job"] = job.id


def finish(job=None) -> None:
    job = job or newly_finished(P + "job")
    if job is not None and job.result is not None:
        st.session_state[P + "result"], job.result = job.result, None


def live() -> None:
    def progress(job, events):
        step = events[-1].message if events else "loading the model"
        return job.progress or 0.0, t(P + ("progress.quantizing" if step == "quantizing" else "progress.loading"))

    live_panel(P, finish, progress, lambda job, events: None)


def hessian_figure(run: dict) -> go.Figure:
    fig = go.Figure()
    diag = run["hessian_diag"]
    fig.add_bar(x=list(range(len(diag))), y=diag, marker_color="#1971c2", hovertemplate=t(P + "hessian.hover"))
    for g in range(run["group"], len(diag), run["group"]):
        fig.add_vline(x=g - 0.5, line_width=0.5, line_dash="dot", line_color="#adb5bd")
    fig.update_layout(
        height=280,
        margin={"t": 20, "b": 40},
        xaxis_title=t(P + "chart.column"),
        yaxis_title=t(P + "hessian.y"),
        yaxis_type="log",
        showlegend=False,
    )
    return fig


def column_figure(run: dict) -> go.Figure:
    fig = go.Figure()
    x = list(range(len(run["col_error_rtn"])))
    for key, colour, name in (("rtn", RTN, t(P + "rtn")), ("gptq", GPTQ, t(P + "gptq"))):
        fig.add_scatter(
            x=x,
            y=run["col_error_" + key],
            mode="lines",
            line={"color": colour, "width": 1},
            name=name,
            hovertemplate=t(P + "columns.hover", method=name),
        )
    fig.update_layout(
        height=300,
        margin={"t": 20, "b": 40},
        xaxis_title=t(P + "chart.column"),
        yaxis_title=t(P + "columns.y"),
        yaxis_type="log",
        legend={"orientation": "h", "y": -0.3},
    )
    return fig


def error_figure(run: dict) -> go.Figure:
    sets = [t(P + "errors.calibration"), t(P + "errors.held_out")]
    fig = go.Figure()
    for key, colour, name in (("rtn", RTN, t(P + "rtn")), ("gptq", GPTQ, t(P + "gptq"))):
        values = [100 * run["out_error_" + key], 100 * run["held_out_error_" + key]]
        text = [f"{v:.2f}%" for v in values]
        fig.add_bar(x=sets, y=values, name=name, marker_color=colour, text=text, textposition="outside")
    fig.update_layout(
        height=300, margin={"t": 30, "b": 40}, yaxis_title=t(P + "errors.y"), legend={"orientation": "h", "y": -0.25}
    )
    return fig


def results(run: dict) -> None:
    rows, cols = run["shape"]
    st.markdown(t(P + "result.title", name=run["name"], rows=rows, cols=cols, bits=run["bits"], group=run["group"]))
    c = st.columns(4)
    ratio = run["out_error_gptq"] / run["out_error_rtn"]
    c[0].metric(t(P + "metric.out_rtn"), f"{100 * run['out_error_rtn']:.2f}%")
    c[1].metric(t(P + "metric.out_gptq"), f"{100 * run['out_error_gptq']:.2f}%", f"×{ratio:.2f}", delta_color="off")
    held = run["held_out_error_gptq"] / run["held_out_error_rtn"]
    c[2].metric(t(P + "metric.held_out"), f"×{held:.2f}")
    c[3].metric(
        t(P + "metric.weight"),
        f"{100 * run['weight_error_gptq']:.1f}%",
        t(P + "metric.weight_rtn", pct=f"{100 * run['weight_error_rtn']:.1f}"),
        delta_color="off",
    )
    st.caption(
        t(
            P + "measured",
            tokens=run["tokens"],
            held=run["held_out_tokens"],
            gptq=f"{1000 * run['gptq_s']:.0f}",
            rtn=f"{1000 * run['rtn_s']:.1f}",
            order=t(P + ("order.act" if run["act_order"] else "order.natural")),
        )
    )
    st.plotly_chart(error_figure(run), key=P + "errors")
    st.markdown(t(P + "hessian.title"))
    st.plotly_chart(hessian_figure(run), key=P + "hessian")
    st.caption(t(P + "hessian.caption"))
    st.markdown(t(P + "columns.title"))
    st.plotly_chart(column_figure(run), key=P + "columns")
    st.caption(t(P + "columns.caption"))
    with st.expander(t(P + "how.title")):
        st.markdown(t(P + "how.body"))


def render() -> None:
    st.markdown(t(P + "intro"))
    finish()
    choice = controls()
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "run"), key=P + "run", type="primary", disabled=running, icon=":material/play_arrow:"):
        start(choice)
        st.rerun()
    live()
    run = st.session_state.get(P + "result")
    if run is None:
        st.info(t(P + "no_run"))
        return
    results(run)
    st.caption(t(P + "table_note"))
