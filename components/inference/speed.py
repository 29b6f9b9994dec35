"""The Speed tab: prefill vs decode on this machine, the roofline with both phases on it, the decode paths
side by side (the token loop's hand-written pass among them) and where a decode step's time goes."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from backends import inference as inf
from backends.core.jobs import shared_runner
from components.i18n import t
from components.live_job import live_panel

P = "inference.speed."
PARTS = ("roofline", "prefill", "decode", "paths", "profile")


def parts_of(events) -> dict:
    found = {}
    for event in events:
        if "part" in event.data:
            found[event.data["part"]] = event.data["value"]
    return found


def draw_phases(prefill: list[dict], decode: dict | None) -> None:
    fig = go.Figure()
    fig.add_scatter(
        x=[r["tokens"] for r in prefill],
        y=[r["ms_per_token"] for r in prefill],
        name=t(P + "prefill"),
        mode="lines+markers",
    )
    for name, rows in (decode or {}).items():
        fig.add_scatter(
            x=[r["tokens"] for r in rows],
            y=[r["ms_per_token"] for r in rows],
            name=t(P + "decode." + name),
            mode="lines+markers",
        )
    fig.update_layout(
        height=320,
        margin={"t": 30, "b": 40},
        xaxis_title=t(P + "axis.length"),
        yaxis_title=t(P + "axis.ms_per_token"),
        yaxis_rangemode="tozero",
        legend={"orientation": "h", "y": -0.3},
    )
    st.plotly_chart(fig, key=P + "phases")
    st.caption(t(P + "phases.caption"))


def draw_roofline(roof: dict, prefill: list[dict] | None) -> None:
    c = st.columns(4)
    c[0].metric(t(P + "bandwidth"), f"{roof['bandwidth'] / 1e9:.1f} GB/s")
    c[1].metric(t(P + "flops"), f"{roof['flops'] / 1e9:.1f} GFLOP/s")
    c[2].metric(t(P + "decode_bound"), f"{roof['decode_bound']:.1f} tok/s")
    c[3].metric(t(P + "prefill_bound"), f"{roof['prefill_bound']:.0f} tok/s")
    xs = [0.05 * 1.25**i for i in range(48)]
    fig = go.Figure()
    fig.add_scatter(
        x=xs, y=[min(roof["flops"], roof["bandwidth"] * x) / 1e9 for x in xs], name=t(P + "roof"), mode="lines"
    )
    # Each phase at its intensity and the FLOP rate it reached (FLOPs per token x tokens/s measured).
    fig.add_scatter(
        x=[roof["decode_intensity"]],
        y=[roof["flops_per_token"] * roof.get("decode_tokens_per_s", 0) / 1e9],
        name=t(P + "decode_point"),
        mode="markers",
        marker={"size": 12},
    )
    if prefill:
        fig.add_scatter(
            x=[r["tokens"] * roof["flops_per_token"] / roof["weight_bytes"] for r in prefill],
            y=[roof["flops_per_token"] * r["tokens_per_s"] / 1e9 for r in prefill],
            text=[str(r["tokens"]) for r in prefill],
            name=t(P + "prefill_points"),
            mode="markers+text",
            textposition="top center",
            marker={"size": 10},
        )
    fig.update_layout(
        height=360,
        margin={"t": 30, "b": 40},
        xaxis={"type": "log", "title": t(P + "axis.intensity")},
        yaxis={"type": "log", "title": t(P + "axis.gflops")},
        legend={"orientation": "h", "y": -0.3},
    )
    st.plotly_chart(fig, key=P + "roofline")
    st.caption(
        t(
            P + "roofline.caption",
            mb=f"{roof['weight_bytes'] / 1e6:.0f}",
            intensity=f"{roof['decode_intensity']:.2f}",
            ridge=f"{roof['ridge']:.1f}",
        )
    )


def draw_paths(rows: list[dict]) -> None:
    table = {
        t(P + "col.path"): [r["path"] for r in rows],
        t(P + "col.tokens_s"): [f"{r['tokens_per_s']:.1f}" for r in rows],
        t(P + "col.ms"): [f"{r['ms_per_token']:.1f}" for r in rows],
        t(P + "col.share"): [f"{r['bound_share']:.2f}" if r["bound_share"] is not None else "–" for r in rows],
        t(P + "col.same"): [t(P + ("yes" if r["same_tokens"] else "no")) for r in rows],
        t(P + "col.diff"): [f"{r['max_logit_diff']:.1e}" for r in rows],
    }
    st.table(table)
    if not inf.llama_cpp_available():
        st.caption(t(P + "no_llama_cpp"))
    st.caption(t(P + "paths.caption"))


def draw_profile(profiles: dict) -> None:
    fig = go.Figure()
    names = list(profiles)
    for group in inf.GROUPS:
        ms = [profiles[n]["ms"][group] for n in names]
        fig.add_bar(y=names, x=ms, name=t(P + "group." + group), orientation="h")
    fig.update_layout(
        barmode="stack",
        height=300,
        margin={"t": 30, "b": 40},
        xaxis_title=t(P + "axis.ms_per_step"),
        legend={"orientation": "h", "y": -0.35},
    )
    st.plotly_chart(fig, key=P + "profile")
    st.caption(t(P + "profile.caption"))


def draw(job, events) -> None:
    parts = parts_of(events)
    if "roofline" in parts:
        roof = dict(parts["roofline"])
        fast = [r for r in parts.get("paths", []) if r["path"] == "hand-written (fast_step)"]
        if fast:
            roof["decode_tokens_per_s"] = fast[0]["tokens_per_s"]
        st.markdown("#### " + t(P + "roofline.title"))
        draw_roofline(roof, parts.get("prefill"))
    if "prefill" in parts:
        st.markdown("#### " + t(P + "phases.title"))
        draw_phases(parts["prefill"], parts.get("decode"))
    if "paths" in parts:
        st.markdown("#### " + t(P + "paths.title"))
        draw_paths(parts["paths"])
    if "profile" in parts:
        st.markdown("#### " + t(P + "profile.title"))
        draw_profile(parts["profile"])


def progress(job, events) -> tuple[float, str]:
    done = parts_of(events)
    left = [p for p in PARTS if p not in done]
    return job.progress or 0.0, t(P + "measuring", part=t(P + "part." + left[0]) if left else "")


def render() -> None:
    st.subheader(t(P + "title"))
    st.markdown(t(P + "intro"))
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "measure"), key=P + "measure", disabled=running, icon=":material/speed:"):
        st.session_state[P + "job"] = shared_runner().submit("inference.speed", inf.speed_job).id
        st.rerun()
    if job is None:
        st.caption(t(P + "before"))
    live_panel(P, lambda finished: None, progress, draw)
