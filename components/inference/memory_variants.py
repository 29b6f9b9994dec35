"""The Memory tab's cache variants: dynamic vs static vs int8/int4 quantized caches (ms per token, bytes,
perplexity) and sliding window vs attention sinks along the long text, from one background job."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from backends import inference as inf
from backends.core.jobs import shared_runner
from components.i18n import t
from components.job_status import newly_finished
from components.live_job import live_panel

P = "inference.memory."
V = P + "variants."
COLORS = {"full": "#495057", "window": "#e8590c", "sinks": "#1971c2"}


def mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.2f}"


def variants_table(run: dict) -> None:
    decode = run["decode"]
    rows = {k: [] for k in ("variant", "ms", "mib", "formula", "ppl", "note")}

    def add(variant, ms, nbytes, formula, ppl, note):
        for key, value in zip(rows, (variant, ms, nbytes, formula, ppl, note), strict=True):
            rows[key].append(value)

    for kind in ("dynamic", "static"):
        d = decode[kind]
        add(
            t(V + kind),
            f"{d['ms_per_token']:.1f}",
            mib(d["cache_bytes"]),
            mib(d["formula_bytes"]),
            "–",
            t(V + kind + ".note"),
        )
    fp = run["int8"]
    add(
        t(V + "fp_chunked"),
        "–",
        mib(fp["fp_bytes"]),
        mib(fp["formula_bytes"]),
        f"{fp['fp_ppl']:.3f}",
        t(V + "fp.note"),
    )
    for bits in (8, 4):
        q = run[f"int{bits}"]
        note = t(V + "q.note", ratio=f"{q['expected_ratio']:.3f}", got=f"{q['q_bytes'] / q['fp_bytes']:.3f}")
        add(t(V + "quant", bits=bits), "–", mib(q["q_bytes"]), mib(q["formula_bytes"]), f"{q['q_ppl']:.3f}", note)
    st.table({t(V + "col." + k): v for k, v in rows.items()})
    same = t(V + "same") if decode["same_tokens"] else t(V + "differ")
    d8, d4 = f"{run['int8']['delta']:+.3f}", f"{run['int4']['delta']:+.3f}"
    decode_text = t(V + "decode.caption", prompt=decode["prompt_tokens"], new=decode["new_tokens"], same=same)
    st.caption(decode_text + " " + t(V + "kvq.caption", n=fp["n_tokens"], chunk=fp["chunk"], d8=d8, d4=d4))


def smooth(values: list[float], k: int = 32) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= k:
            total -= values[i - k]
        out.append(total / min(i + 1, k))
    return out


def sinks_section(s: dict) -> None:
    st.markdown(t(V + "sinks.title"))
    c = st.columns(3)
    for col, key in zip(c, ("full", "window", "sinks"), strict=True):
        col.metric(t(V + "ppl." + key), f"{s[key + '_past_window']:.2f}", help=t(V + "ppl.whole", ppl=f"{s[key]:.2f}"))
    fig = go.Figure()
    for key in ("full", "window", "sinks"):
        losses = s["losses"][key]
        fig.add_scatter(
            x=list(range(1, len(losses) + 1)), y=smooth(losses), name=t(V + "ppl." + key), line={"color": COLORS[key]}
        )
    fig.add_vline(x=s["window"], line_dash="dot", line_color="gray", annotation_text=t(V + "window_edge"))
    fig.update_layout(
        height=320,
        margin={"t": 20, "b": 40},
        xaxis_title=t(P + "axis.position"),
        yaxis_title=t(V + "axis.loss"),
        legend={"orientation": "h", "y": -0.3},
    )
    st.plotly_chart(fig, key=V + "sinks.chart")
    st.caption(t(V + "sinks.caption", n=s["n_tokens"], window=s["window"], sinks=s["sinks"]))


def render() -> None:
    st.markdown(t(V + "title"))
    st.markdown(t(V + "intro"))
    c1, c2 = st.columns(2)
    with c1:
        window = st.select_slider(
            t(V + "window"), [64, 128, 256, 512], value=256, key=V + "window", persist_state="session"
        )
    with c2:
        sinks = st.slider(t(V + "sinks"), 1, 16, 4, key=V + "sinks", persist_state="session")
    job = shared_runner().get(st.session_state.get(V + "job"))
    running = job is not None and not job.done
    st.caption(t(V + "before"))
    if st.button(t(V + "run"), key=V + "run", type="primary", disabled=running, icon=":material/play_arrow:"):
        st.session_state[V + "job"] = shared_runner().submit(P + "variants", inf.variants_job, window, sinks).id
        st.rerun()

    def finish(job=None) -> None:
        job = job or newly_finished(V + "job")
        if job is not None and job.result is not None:
            st.session_state[V + "run_result"] = job.result

    def progress(job, events):
        step = events[-1].message if events else "decode"
        return job.progress or 0.0, t(V + "running", step=t(V + "step." + step))

    finish()
    live_panel(V, finish, progress, lambda job, ev: None)
    run = st.session_state.get(V + "run_result")
    if run is None:
        st.info(t(V + "none"))
        return
    variants_table(run)
    sinks_section(run["sinks"])
