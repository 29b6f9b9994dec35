"""The pruning tab: magnitude, Wanda and structured pruning of SmolLM2 or the demo GPT at the sparsities
picked, as a background job: the three perplexity-vs-sparsity curves on one chart (drawn as the points
arrive), the decode speed of dense / 50% unstructured / 30% structured copies, the structured copy
saved and loaded back, and a short LoRA recovery fine-tune with its perplexity before and after."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from backends import compression as cp
from backends import quantization as q
from backends.core.jobs import shared_runner
from components.i18n import t
from components.live_job import live_panel
from components.option_labels import follow_language

P = "compression.pruning."
MODELS = ("smollm2-135m-instruct", q.DEMO_GPT_NAME)
SPARSITY_CHOICES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
PPL_CHOICES = (256, 512, 1024, 2048)
COLOURS = {"magnitude": "#e8590c", "wanda": "#2b8a3e", "structured": "#1971c2", "dense": "#868e96"}


def method_name(method: str) -> str:
    return t(P + "method." + method)


def controls() -> dict:
    a, b = st.columns([1, 2])
    with a:
        model = st.radio(
            t(P + "model"),
            MODELS,
            key=follow_language(P + "model"),
            format_func=lambda m: t(P + "model." + ("demo" if m == q.DEMO_GPT_NAME else "smollm2")),
            persist_state="session",
        )
    with b:
        methods = st.multiselect(
            t(P + "methods"),
            list(cp.PRUNING_METHODS),
            default=list(cp.PRUNING_METHODS),
            format_func=method_name,
            key=follow_language(P + "methods"),
            persist_state="session",
        )
        sparsities = st.multiselect(
            t(P + "sparsities"),
            list(SPARSITY_CHOICES),
            default=list(cp.PRUNING_SPARSITIES),
            format_func=lambda s: f"{s:.0%}",
            key=P + "sparsities",
            persist_state="session",
        )
    st.caption(t(P + "model_note." + ("demo" if model == q.DEMO_GPT_NAME else "smollm2")))
    c = st.columns(3)
    tokens = c[0].select_slider(
        t(P + "ppl_tokens"), PPL_CHOICES, value=512, key=P + "ppl_tokens", persist_state="session"
    )
    with c[1]:
        speed = st.toggle(t(P + "speed"), value=True, key=P + "speed", persist_state="session")
    steps = c[2].slider(t(P + "recovery_steps"), 0, 60, 20, 5, key=P + "recovery_steps", persist_state="session")
    st.caption(t(P + "recovery_note"))
    return {
        "model": model,
        "methods": tuple(methods),
        "sparsities": tuple(sorted(sparsities)),
        "ppl_tokens": int(tokens),
        "speed": bool(speed),
        "recovery_steps": int(steps),
    }


def start(choice: dict) -> None:
    st.session_state[P + "error"] = None
    if not choice["methods"] or not choice["sparsities"]:
        st.session_state[P + "error"] = t(P + "pick_something")
        return
    job = shared_runner().submit(
        "compression.pruning",
        cp.pruning_curve_job,
        choice["model"],
        choice["sparsities"],
        choice["methods"],
        choice["ppl_tokens"],
        choice["speed"],
        choice["recovery_steps"],
    )
    st.session_state[P + "job"] = job.id


def finish(job) -> None:
    if job is not None and job.result is not None:
        st.session_state[P + "result"], job.result = job.result.to_dict(), None


def curve_figure(points: list[dict], dense: float | None) -> go.Figure:
    fig = go.Figure()
    for method in cp.PRUNING_METHODS:
        rows = sorted((p for p in points if p["method"] == method), key=lambda p: p["sparsity"])
        if not rows:
            continue
        fig.add_scatter(
            x=[100 * p["achieved"] for p in rows],
            y=[p["perplexity"] for p in rows],
            mode="lines+markers",
            name=method_name(method),
            line={"color": COLOURS[method]},
            hovertemplate=t(P + "chart.hover", method=method_name(method)),
        )
    if dense:
        # a trace, not add_hline's annotation: on a log axis plotly places that annotation at 10**y, and the
        # axis stretched to 1e18 to hold it
        xs = [100 * p["achieved"] for p in points] or [0.0]
        fig.add_scatter(
            x=[min(xs), max(xs)],
            y=[dense, dense],
            mode="lines",
            name=t(P + "chart.dense"),
            line={"dash": "dot", "color": COLOURS["dense"]},
            hoverinfo="skip",
        )
    fig.update_layout(
        height=380,
        margin={"t": 30, "b": 40},
        xaxis_title=t(P + "chart.x"),
        yaxis_title=t(P + "chart.y"),
        yaxis_type="log",
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def speed_figure(rows: list[dict]) -> go.Figure:
    names = [t(P + "speed." + r["row"], pct=f"{r['sparsity']:.0%}") for r in rows]
    fig = go.Figure()
    fig.add_bar(
        x=names,
        y=[r["decode_tps"] for r in rows],
        marker_color=[COLOURS["dense" if r["row"] == "dense" else r["row"]] for r in rows],
        text=[f"{r['decode_tps']:.1f}" for r in rows],
        textposition="outside",
        customdata=[[r["params"] / 1e6, r["nonzero"] / 1e6, r["weight_bytes"] / 2**20] for r in rows],
        hovertemplate=t(P + "speed.hover"),
    )
    fig.update_layout(height=320, margin={"t": 30, "b": 40}, yaxis_title=t(P + "speed.y"), showlegend=False)
    return fig


def progress_text(data: dict) -> str:
    """The running job's last step in the page's language (the events carry English messages)."""
    kind = data.get("kind")
    if data.get("stage") == "recovery":
        return t(P + "progress.recovery", step=data.get("step", 0))
    if kind == "point":
        return t(
            P + "progress.point",
            method=method_name(data["method"]) if data["method"] != "dense" else "–",
            pct=f"{data['sparsity']:.0%}",
        )
    if kind in ("speed", "progress"):
        return t(P + "progress.speed")
    return t(P + "progress.setup")


def live() -> None:
    def progress(job, events):
        return job.progress or 0.0, progress_text(events[-1].data if events else {})

    def draw(job, events):
        if job.done:
            return
        points = [e.data for e in events if e.data.get("kind") == "point" and e.data.get("method") != "dense"]
        dense = next((e.data["perplexity"] for e in events if e.data.get("method") == "dense"), None)
        if points:
            st.plotly_chart(curve_figure(points, dense), key=P + "live_chart")

    live_panel(P, finish, progress, draw)


def results(run: dict) -> None:
    by = {(p["method"], round(p["sparsity"], 2)): p for p in run["points"]}
    c = st.columns(4)
    c[0].metric(t(P + "metric.dense"), f"{run['dense_ppl']:.2f}")
    for col, method in zip(c[1:], cp.PRUNING_METHODS, strict=True):
        half = by.get((method, 0.5))
        col.metric(t(P + "metric.at50", method=method_name(method)), f"{half['perplexity']:.2f}" if half else "–")
    st.caption(t(P + "measured", tokens=run["ppl_tokens"], calibration=run["calibration"], s=f"{run['seconds']:.0f}"))
    wanda, magnitude = by.get(("wanda", 0.5)), by.get(("magnitude", 0.5))
    if wanda and magnitude:
        lower = wanda["perplexity"] < magnitude["perplexity"]
        st.info(t(P + ("wanda_wins" if lower else "wanda_loses")))
    st.markdown(t(P + "chart.title"))
    st.plotly_chart(curve_figure(run["points"], run["dense_ppl"]), key=P + "chart")
    if run["family"] == "gpt_neox":
        st.caption(t(P + "neox_note"))
    table = [
        {
            t(P + "table.method"): method_name(p["method"]),
            t(P + "table.asked"): f"{p['sparsity']:.0%}",
            t(P + "table.achieved"): f"{p['achieved']:.1%}",
            t(P + "table.removed"): f"{p['params_removed'] / 1e6:.2f} M",
            t(P + "table.ppl"): round(p["perplexity"], 2),
            t(P + "table.kld"): None if p["kld"] is None else round(p["kld"], 4),
        }
        for p in run["points"]
    ]
    with st.expander(t(P + "table.title")):
        st.dataframe(table, hide_index=True)
    if run["speed"]:
        speed_part(run)
    if run["recovery"]:
        recovery_part(run["recovery"])


def speed_part(run: dict) -> None:
    st.markdown(t(P + "speed.title"))
    st.plotly_chart(speed_figure(run["speed"]), key=P + "speed_chart")
    rows = {r["row"]: r for r in run["speed"]}
    dense = rows.get("dense")
    if dense:
        parts = {k: rows[k]["decode_tps"] / dense["decode_tps"] for k in ("magnitude", "structured") if k in rows}
        st.caption(
            t(
                P + "speed.caption",
                unstructured=f"{parts.get('magnitude', float('nan')):.2f}",
                structured=f"{parts.get('structured', float('nan')):.2f}",
                threads=run["threads"],
            )
        )
    if run["reload"]:
        r = run["reload"]
        st.caption(t(P + "reload", mb=f"{r['folder_bytes'] / 2**20:.1f}", diff=f"{r['max_logit_diff']:.1e}"))
    st.info(t(P + "speed.why"))


def recovery_part(rec: dict) -> None:
    st.markdown(t(P + "recovery.title"))
    c = st.columns(3)
    before, after = rec["ppl_before"], rec["ppl_after"]
    c[0].metric(t(P + "recovery.before"), "–" if before is None else f"{before:.2f}")
    delta = None if before is None or after is None else f"{after - before:+.2f}"
    c[1].metric(t(P + "recovery.after"), "–" if after is None else f"{after:.2f}", delta, delta_color="inverse")
    c[2].metric(t(P + "recovery.trainable"), f"{rec['trainable'] / 1e6:.2f} M")
    st.caption(t(P + "recovery.caption", steps=rec["steps"], s=f"{rec['train_s']:.1f}", pct=f"{rec['achieved']:.1%}"))
    if rec["losses"]:
        fig = go.Figure()
        fig.add_scatter(y=rec["losses"], x=list(range(1, len(rec["losses"]) + 1)), mode="lines", name="loss")
        fig.update_layout(height=240, margin={"t": 20, "b": 40}, xaxis_title=t(P + "recovery.step"))
        fig.update_layout(yaxis_title=t(P + "recovery.loss"))
        st.plotly_chart(fig, key=P + "recovery_chart")


def render() -> None:
    st.markdown(t(P + "intro"))
    choice = controls()
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "run"), key=P + "run", type="primary", disabled=running, icon=":material/content_cut:"):
        start(choice)
        if not st.session_state.get(P + "error"):
            st.rerun()
    if st.session_state.get(P + "error"):
        st.error(st.session_state[P + "error"])
    live()
    run = st.session_state.get(P + "result")
    if run is None:
        st.info(t(P + "no_run"))
        return
    results(run)
