"""The Memory tab: the KV cache formula with the loaded model's numbers, the bytes a real DynamicCache holds
as the prompt grows (measured points on the formula's line), a calculator for known models or any hub id,
and the cache variants (components/inference/memory_variants.py)."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from backends import inference as inf
from backends.core.jobs import shared_runner
from components.i18n import t
from components.inference import memory_variants
from components.job_status import newly_finished
from components.live_job import live_panel
from components.option_labels import follow_language

P = "inference.memory."
G = P + "growth."
CACHE_DTYPES = ("float32", "bfloat16", "float16", "float8", "int8", "int4")
WEIGHT_DTYPES = ("float32", "bfloat16", "int8", "int4")


def human(nbytes: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:,.2f} {unit}"
    return f"{nbytes:,.0f} B"


def formula_section(loaded) -> None:
    config = loaded.model.config
    s = inf.kv_shape(config)
    b = next(loaded.model.parameters()).element_size()
    st.markdown(t(P + "formula.title"))
    st.latex(r"\text{KV bytes} = L \times 2 \times H_{kv} \times d_{head} \times b \times T \;(\times\ \text{batch})")
    per_token = inf.kv_formula_bytes(config, 1, b)
    grouped = f"{per_token:,.0f}".replace(",", "{,}")  # KaTeX reads a bare comma as a thin space
    st.latex(
        rf"{s.layers} \times 2 \times {s.kv_heads} \times {s.head_dim} \times {b}\,\text{{B}} \times T"
        rf" = {grouped}\,\text{{B}} \times T"
    )
    weights = inf.loaded_weight_bytes(loaded)
    st.caption(
        t(
            P + "formula.caption",
            layers=s.layers,
            q=s.query_heads,
            kv=s.kv_heads,
            d=s.head_dim,
            b=b,
            per_token=f"{per_token / 1024:.0f}",
            mha=f"{per_token * s.query_heads / s.kv_heads / 1024:.0f}",
            weights=human(weights),
            cross=f"{inf.crossover_tokens(config, inf.loaded_params(loaded), b, b):,}",
            max_pos=getattr(config, "max_position_embeddings", "?"),
        )
    )


def growth_section() -> None:
    st.markdown(t(P + "growth.title"))
    c1, c2 = st.columns([3, 1])
    with c1:
        max_tokens = st.select_slider(
            t(P + "growth.tokens"), [256, 512, 1024, 2048], value=1024, key=G + "tokens", persist_state="session"
        )
    job = shared_runner().get(st.session_state.get(G + "job"))
    running = job is not None and not job.done
    with c2:
        if st.button(t(P + "growth.run"), key=G + "run", disabled=running, icon=":material/play_arrow:"):
            st.session_state[G + "job"] = shared_runner().submit(P + "growth", inf.growth_job, max_tokens, 64).id
            st.rerun()

    def finish(job=None) -> None:
        job = job or newly_finished(G + "job")
        if job is not None and job.result is not None:
            st.session_state[G + "rows"] = job.result

    finish()
    live_panel(G, finish, lambda job, ev: (job.progress or 0.0, t(P + "growth.running")), lambda job, ev: None)
    rows = st.session_state.get(G + "rows")
    if not rows:
        st.info(t(P + "growth.none"))
        return
    fig = go.Figure()
    top = rows[-1]["tokens"]
    per_token = rows[-1]["formula"] / top
    fig.add_scatter(
        x=[0, top], y=[0, per_token * top / 2**20], mode="lines", name=t(P + "growth.formula"), line={"dash": "dash"}
    )
    fig.add_scatter(
        x=[r["tokens"] for r in rows],
        y=[r["measured"] / 2**20 for r in rows],
        mode="markers",
        name=t(P + "growth.measured"),
        marker={"size": 9},
    )
    fig.update_layout(
        height=320,
        margin={"t": 20, "b": 40},
        xaxis_title=t(P + "axis.tokens"),
        yaxis_title=t(P + "axis.mib"),
        legend={"orientation": "h", "y": -0.3},
    )
    st.plotly_chart(fig, key=G + "chart")
    worst = max(abs(r["measured"] - r["formula"]) for r in rows)
    st.caption(
        t(P + "growth.caption", n=len(rows), worst=f"{worst:,}", top=top, mib=f"{rows[-1]['measured'] / 2**20:.1f}")
    )


def pick_config():
    """(name, config-like, params or None) from the list or a hub id; None when a hub id can't be read."""
    source = st.radio(
        t(P + "calc.source"),
        ["list", "hub"],
        key=follow_language(P + "calc.source"),
        format_func=lambda k: t(P + "calc.source." + k),
        horizontal=True,
        persist_state="session",
    )
    if source == "list":
        names = [m.name for m in inf.KNOWN_MODELS]
        name = st.selectbox(t(P + "calc.model"), names, index=7, key=P + "calc.model", persist_state="session")
        shape = inf.KNOWN_BY_NAME[name]
        return name, shape, shape.params
    hub_id = st.text_input(t(P + "calc.hub_id"), "Qwen/Qwen2.5-1.5B", key=P + "calc.hub_id", persist_state="session")
    try:
        config = inf.hub_config(hub_id)
    except inf.ConfigUnavailable as exc:
        st.warning(t(P + "calc.unavailable", error=str(exc)))
        return None
    return hub_id, config, None


def calculator_section() -> None:
    st.markdown(t(P + "calc.title"))
    c1, c2 = st.columns(2)
    with c1:
        picked = pick_config()
    with c2:
        cache_dtype = st.selectbox(
            t(P + "calc.cache_dtype"), CACHE_DTYPES, index=1, key=P + "calc.cache_dtype", persist_state="session"
        )
        weight_dtype = st.selectbox(
            t(P + "calc.weight_dtype"), WEIGHT_DTYPES, index=1, key=P + "calc.weight_dtype", persist_state="session"
        )
        context = st.number_input(
            t(P + "calc.context"), 1, 10_000_000, 8192, step=1024, key=P + "calc.context", persist_state="session"
        )
        batch = st.number_input(t(P + "calc.batch"), 1, 4096, 1, key=P + "calc.batch", persist_state="session")
    if picked is None:
        return
    name, config, params = picked
    cb, wb = inf.DTYPE_BYTES[cache_dtype], inf.DTYPE_BYTES[weight_dtype]
    s = inf.kv_shape(config)
    total = inf.kv_formula_bytes(config, int(context), cb, int(batch))
    m = st.columns(4)
    m[0].metric(t(P + "calc.per_token"), human(inf.kv_formula_bytes(config, 1, cb)))
    m[1].metric(t(P + "calc.total"), human(total))
    if params is None:
        st.caption(t(P + "calc.shape", layers=s.layers, q=s.query_heads, kv=s.kv_heads, d=s.head_dim))
        st.caption(t(P + "calc.no_params"))
        return
    weights = inf.weights_bytes(params, wb)
    cross = inf.crossover_tokens(config, params, wb, cb, int(batch))
    m[2].metric(t(P + "calc.weights"), human(weights), help=t(P + "calc.params", n=f"{params / 1e9:.2f}"))
    m[3].metric(t(P + "calc.crossover"), f"{cross:,}")
    st.caption(
        t(
            P + "calc.caption",
            name=name,
            layers=s.layers,
            q=s.query_heads,
            kv=s.kv_heads,
            d=s.head_dim,
            max_pos=f"{config.max_position_embeddings:,}",
            batch=int(batch),
        )
    )
    top = max(int(context), cross) * 1.2
    xs = [top * i / 40 for i in range(41)]
    fig = go.Figure()
    fig.add_scatter(
        x=xs, y=[inf.kv_formula_bytes(config, x, cb, int(batch)) / 2**30 for x in xs], name=t(P + "calc.kv")
    )
    fig.add_hline(y=weights / 2**30, line_dash="dash", annotation_text=t(P + "calc.weights"))
    fig.add_vline(x=int(context), line_dash="dot", line_color="gray")
    fig.update_layout(
        height=300, margin={"t": 20, "b": 40}, xaxis_title=t(P + "axis.context"), yaxis_title=t(P + "axis.gib")
    )
    st.plotly_chart(fig, key=P + "calc.chart")


def render() -> None:
    st.markdown(t(P + "intro"))
    with st.spinner(t(P + "loading")):
        loaded = inf.load_model()
    formula_section(loaded)
    growth_section()
    calculator_section()
    memory_variants.render()
