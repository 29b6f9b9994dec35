"""FlashAttention on the batching tab: the tiled online softmax checked against plain attention, the memory
traffic each moves, and PyTorch's attention kernels timed on this machine."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
import torch

from backends import inference as inf
from backends.core.jobs import shared_runner
from components.i18n import t
from components.job_status import job_status

P = "inference.flash."


def by_hand() -> None:
    c = st.columns(2)
    tokens = c[0].select_slider(t(P + "tokens"), [64, 128, 256, 512], 256, key=P + "tokens", persist_state="session")
    tile = c[1].select_slider(t(P + "tile"), [16, 32, 64, 128], 64, key=P + "tile", persist_state="session")
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 9, tokens, 64, generator=gen) for _ in range(3))
    with torch.inference_mode():
        tiled, held = inf.tiled_attention(q, k, v, tile=tile)
        diff = float((tiled - inf.naive_attention(q, k, v)).abs().max())
    traffic = inf.traffic_bytes(tokens, 9, 64, tile)
    c = st.columns(4)
    c[0].metric(t(P + "diff"), f"{diff:.1e}")
    c[1].metric(t(P + "held"), f"{held['score_elements']:,}", f"/ {held['full_elements']:,}", delta_color="off")
    c[2].metric(t(P + "traffic.naive"), f"{traffic['naive'] / 2**20:.1f} MB")
    c[3].metric(t(P + "traffic.tiled"), f"{traffic['tiled'] / 2**20:.1f} MB")
    st.caption(t(P + "by_hand.caption", heads=9, dim=64))


def failure(job) -> None:
    """A measurement job's error, in the tab that started it."""
    if job.status == "failed":
        st.error(t("inference.batching.failed", error=job.error))


def kernels() -> None:
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "measure"), key=P + "measure", disabled=running, icon=":material/timer:"):
        st.session_state[P + "job"] = shared_runner().submit("inference.kernels", inf.kernels_job).id
        st.rerun()
    job_status(P + "job", lambda job: t(P + "measuring"), failure)
    if job is not None and job.status == "done" and job.result is not None:
        st.session_state[P + "rows"] = job.result
    found = inf.available_backends()
    runs = ", ".join(n for n, ok in found.items() if ok)
    st.caption(t(P + "backends", runs=runs, not_here=", ".join(n for n, ok in found.items() if not ok)))
    rows = st.session_state.get(P + "rows")
    if not rows:
        return
    fig = go.Figure()
    x = [r["tokens"] for r in rows]
    fig.add_scatter(x=x, y=[r["naive_ms"] for r in rows], name=t(P + "naive"), mode="lines+markers")
    for name in ("math", "flash_attention", "efficient_attention"):
        if name + "_ms" in rows[0]:
            ys = [r[name + "_ms"] for r in rows]
            fig.add_scatter(x=x, y=ys, name=f"SDPA · {name.upper()}", mode="lines+markers")
    fig.update_layout(
        height=320,
        margin={"t": 30, "b": 40},
        xaxis_title=t(P + "axis.tokens"),
        yaxis_title=t(P + "axis.ms"),
        legend={"orientation": "h", "y": -0.3},
    )
    st.plotly_chart(fig, key=P + "chart")
    table = {t(P + "axis.tokens"): x, t(P + "scores_mb"): [f"{r['scores_mb']:.1f}" for r in rows]}
    table[t(P + "naive")] = [f"{r['naive_ms']:.1f}" for r in rows]
    for name in ("math", "flash_attention"):
        if name + "_ms" in rows[0]:
            table[f"SDPA · {name.upper()} (ms)"] = [f"{r[name + '_ms']:.1f}" for r in rows]
            table[t(P + "max_diff", name=name.upper())] = [f"{r[name + '_max_diff']:.1e}" for r in rows]
    st.table(table)


def render() -> None:
    st.subheader(t(P + "title"))
    st.markdown(t(P + "intro"))
    by_hand()
    kernels()
