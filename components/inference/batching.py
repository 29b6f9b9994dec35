"""The batching tab: step costs measured on the real model, static vs continuous batching simulated over
them (queue, throughput, latency), the paged KV cache the same run drives, and FlashAttention."""

from __future__ import annotations

import time

import plotly.graph_objects as go
import streamlit as st

from backends import inference as inf
from backends.core.jobs import shared_runner
from components.i18n import t
from components.inference import flash
from components.inference.flash import failure
from components.job_status import job_status

P = "inference.batching."
COLORS = {"static": "#868e96", "continuous": "#1971c2"}


def costs_section() -> inf.StepCosts | None:
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    got = inf.last_costs()
    kind = "secondary" if got else "primary"
    if st.button(t(P + "measure"), key=P + "measure", disabled=running, icon=":material/timer:", type=kind):
        st.session_state[P + "job"] = shared_runner().submit("inference.costs", inf.costs_job).id
        st.rerun()
    job_status(P + "job", lambda job: t(P + "measuring"), failure)
    if running:
        return None
    if got is None:
        st.info(t(P + "no_costs"))
        return None
    costs, when = got
    b = [m[0] for m in costs.measured]
    ms = [1000 * m[1] for m in costs.measured]
    fig = go.Figure()
    fig.add_scatter(x=b, y=ms, mode="markers", name=t(P + "costs.measured"), marker={"size": 10})
    fig.add_scatter(
        x=b, y=[1000 * costs.decode(x) for x in b], mode="lines", name=t(P + "costs.fit"), line={"dash": "dash"}
    )
    fig.add_scatter(
        x=b, y=[1000 * costs.decode(1) * x for x in b], mode="lines", name=t(P + "costs.alone"), line={"dash": "dot"}
    )
    fig.update_layout(
        height=300,
        margin={"t": 30, "b": 40},
        xaxis_title=t(P + "costs.batch"),
        yaxis_title=t(P + "costs.ms"),
        legend={"orientation": "h", "y": -0.3},
    )
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(fig, key=P + "costs.chart")
    c2.metric(t(P + "costs.one"), f"{1000 * costs.decode(1):.1f} ms")
    c2.metric(t(P + "costs.eight"), f"{1000 * costs.decode(8):.1f} ms", f"×{costs.decode(8) / costs.decode(1):.2f}")
    c2.metric(t(P + "costs.prefill"), f"{1000 * costs.prefill_per_token:.2f} ms")
    c2.caption(t(P + "costs.when", s=f"{time.time() - when:.0f}"))
    return costs


def controls() -> dict:
    c = st.columns(4)
    rate = c[0].slider(t(P + "rate"), 0.5, 30.0, 4.0, 0.5, key=P + "rate", persist_state="session")
    n = c[1].slider(t(P + "n"), 4, 120, 40, key=P + "n", persist_state="session")
    batch = c[2].slider(t(P + "max_batch"), 1, 32, 8, key=P + "max_batch", persist_state="session")
    seed = c[3].number_input(t(P + "seed"), 0, 10_000, 0, key=P + "seed", persist_state="session")
    c = st.columns(2)
    prompt = c[0].slider(t(P + "prompt"), 4, 512, (16, 128), key=P + "prompt", persist_state="session")
    output = c[1].slider(t(P + "output"), 1, 512, (8, 160), key=P + "output", persist_state="session")
    return {"rate": rate, "n": n, "max_batch": batch, "seed": int(seed), "prompt": prompt, "output": output}


def comparison(results: dict[str, inf.SimResult]) -> None:
    rows = {t(P + "col.policy"): [t(P + f"policy.{p}") for p in results]}
    rows[t(P + "col.throughput")] = [f"{r.throughput:.1f}" for r in results.values()]
    for what in ("latency", "ttft"):
        for q in (0.5, 0.95):
            rows[t(P + f"col.{what}", q=int(q * 100))] = [f"{r.percentile(what, q):.2f}" for r in results.values()]
    rows[t(P + "col.end")] = [f"{r.end:.1f}" for r in results.values()]
    st.table(rows)
    fig = go.Figure()
    for policy, r in results.items():
        x = [row["t"] for row in r.timeline]
        fig.add_scatter(
            x=x,
            y=[row["running"] for row in r.timeline],
            name=t(P + f"running.{policy}"),
            line={"color": COLORS[policy], "shape": "hv"},
        )
        fig.add_scatter(
            x=x,
            y=[row["waiting"] for row in r.timeline],
            name=t(P + f"waiting.{policy}"),
            line={"color": COLORS[policy], "shape": "hv", "dash": "dot"},
        )
    fig.update_layout(
        height=320,
        margin={"t": 30, "b": 40},
        xaxis_title=t(P + "axis.time"),
        yaxis_title=t(P + "axis.requests"),
        legend={"orientation": "h", "y": -0.3},
    )
    st.plotly_chart(fig, key=P + "timeline")


def sweep_chart(costs, params) -> None:
    rates = [r / 2 for r in range(1, 61, 3)]
    n, batch, seed = params["n"], params["max_batch"], params["seed"]
    rows = inf.sweep(costs, rates, n, batch, params["prompt"], params["output"], seed)
    fig = go.Figure()
    for policy in ("static", "continuous"):
        mine = [r for r in rows if r["policy"] == policy]
        fig.add_scatter(
            x=[r["throughput"] for r in mine],
            y=[r["p50"] for r in mine],
            mode="lines+markers",
            name=t(P + f"policy.{policy}"),
            line={"color": COLORS[policy]},
            text=[f"{r['rate']:.1f}/s" for r in mine],
            hovertemplate="%{text}: %{x:.1f} tok/s, %{y:.2f} s<extra></extra>",
        )
    fig.update_layout(
        height=320,
        margin={"t": 30, "b": 40},
        xaxis_title=t(P + "col.throughput"),
        yaxis_title=t(P + "col.latency", q=50),
        legend={"orientation": "h", "y": -0.3},
    )
    st.plotly_chart(fig, key=P + "sweep")
    st.caption(t(P + "sweep.caption"))


def paged(requests, result: inf.SimResult, max_output: int) -> None:
    st.markdown(t(P + "paged.title"))
    st.markdown(t(P + "paged.body", size=result.block_size))
    last = len(result.snapshots) - 1
    step = st.slider(t(P + "paged.step"), 0, last, min(last, last // 3), key=P + "paged.step", persist_state="session")
    table = result.snapshots[step]
    width = 32
    n = max(result.n_blocks, 1)
    rows = (n + width - 1) // width
    z = [[None] * width for _ in range(rows)]
    text = [[""] * width for _ in range(rows)]
    for rid, blocks in table.items():
        for i, b in enumerate(blocks):
            z[b // width][b % width] = rid
            text[b // width][b % width] = t(P + "paged.hover", rid=rid, i=i)
    fig = go.Figure(
        go.Heatmap(
            z=z, text=text, hovertemplate="%{text}<extra></extra>", colorscale="Turbo", showscale=False, xgap=2, ygap=2
        )
    )
    fig.update_layout(
        height=80 + 28 * rows,
        margin={"t": 10, "b": 10},
        yaxis={"autorange": "reversed", "visible": False},
        xaxis={"visible": False},
    )
    st.plotly_chart(fig, key=P + "paged.grid")
    held = sum(len(b) for b in table.values()) * result.block_size
    reserved = inf.contiguous_reserved(requests, list(table), max_output)
    c = st.columns(3)
    c[0].metric(t(P + "paged.sequences"), len(table))
    c[1].metric(t(P + "paged.held"), held)
    c[2].metric(t(P + "paged.reserved"), reserved)
    st.caption(t(P + "paged.caption"))


def render() -> None:
    st.markdown(t(P + "intro"))
    costs = costs_section()
    if costs is not None:
        params = controls()
        requests = inf.make_requests(params["n"], params["rate"], params["prompt"], params["output"], params["seed"])
        results = {p: inf.simulate(requests, costs, p, params["max_batch"]) for p in ("static", "continuous")}
        comparison(results)
        sweep_chart(costs, params)
        paged(requests, results["continuous"], params["output"][1])
    st.divider()
    flash.render()
