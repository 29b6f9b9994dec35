"""The distributed-training tab: the scratch GPT on 1 or more processes (torchrun, DDP or FSDP),
each rank's loss curve and the all-reduced loss, the gradient check, the 1-process run at the same
global batch, step times, the measured bytes per rank beside the calculator's, and the calculator
for published models (backends/distributed)."""

from __future__ import annotations

import functools
import os
import shlex
import statistics

import plotly.graph_objects as go
import streamlit as st

from backends import distributed as dd
from backends.core.jobs import FAILED, shared_runner
from backends.scratch_gpt import CharTokenizer, GPTConfig, load_corpus
from components.i18n import t
from components.job_status import newly_finished
from components.option_labels import follow_language

P = "architectures.distributed."
PARTS = ("params", "grads", "optimizer", "activations")
PART_COLORS = {"params": "#1971c2", "grads": "#e8590c", "optimizer": "#2b8a3e", "activations": "#862e9c"}
RANK_COLORS = ("#1971c2", "#e8590c", "#2b8a3e", "#c2255c")
STRATEGIES = ("ddp", "fsdp")
CALC_STRATEGY = {"ddp": "ddp", "fsdp": "zero3"}
CHOICES = ("scratch", *dd.PRESETS, "custom")


@functools.lru_cache(maxsize=1)
def shakespeare_vocab() -> int:
    return CharTokenizer.from_text(load_corpus("shakespeare")).vocab_size


def human(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n:,.0f} B"


def process_choices() -> list[int]:
    cores = os.cpu_count() or 1
    return [n for n in (1, 2, 4) if n <= max(2, cores)]


def command_line(spec: dd.RunSpec) -> str:
    return shlex.join(["python", *dd.torchrun_command(spec, "RUN_FOLDER")[1:]])


def start(spec: dd.RunSpec) -> None:
    job = shared_runner().submit("architectures.distributed", dd.distributed_job, spec)
    st.session_state[P + "job"] = job.id
    st.session_state[P + "spec"] = spec


def take_finished() -> None:
    job = newly_finished(P + "job")
    if job is not None:
        st.session_state[P + "events"] = [e.data for e in job.events_since(0)]
        st.session_state[P + "status"] = (job.status, job.error)
        job.result = None


def loss_figure(events: list[dict], world: int) -> go.Figure:
    steps = [e for e in events if e.get("kind") == "rank_step"]
    fig = go.Figure()
    for rank in range(world):
        mine = [e for e in steps if e["run"] == "main" and e["rank"] == rank]
        fig.add_scatter(
            x=[e["step"] for e in mine],
            y=[e["loss_shard"] for e in mine],
            mode="lines",
            name=t(P + "chart.rank", rank=rank),
            line={"width": 1, "color": RANK_COLORS[rank % len(RANK_COLORS)]},
        )
    main = [e for e in steps if e["run"] == "main" and e["rank"] == 0]
    fig.add_scatter(
        x=[e["step"] for e in main],
        y=[e["loss"] for e in main],
        mode="lines",
        name=t(P + "chart.allreduced"),
        line={"width": 3, "color": "#212529"},
    )
    single = [e for e in steps if e["run"] == "single"]
    if single:
        fig.add_scatter(
            x=[e["step"] for e in single],
            y=[e["loss"] for e in single],
            mode="markers",
            name=t(P + "chart.single"),
            marker={"symbol": "circle-open", "size": 7, "color": "#f08c00"},
        )
    fig.update_layout(
        height=340,
        margin={"t": 30, "b": 40},
        xaxis_title=t(P + "chart.step"),
        yaxis_title=t(P + "chart.loss"),
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def grad_table(events: list[dict], world: int) -> None:
    steps = [e for e in events if e.get("kind") == "rank_step" and e["run"] == "main"]
    rows = {}
    for e in steps:
        rows.setdefault(e["step"], {})[e["rank"]] = e
    table = {t(P + "grad.step"): []}
    for rank in range(world):
        table[t(P + "grad.local", rank=rank)] = []
    table[t(P + "grad.after")] = []
    table[t(P + "grad.gap")] = []
    for step, ranks in sorted(rows.items())[-8:]:
        if len(ranks) < world:
            continue
        table[t(P + "grad.step")].append(step)
        for rank in range(world):
            local = ranks[rank]["grad_norm_local"]
            table[t(P + "grad.local", rank=rank)].append("–" if local is None else f"{local:.5f}")
        table[t(P + "grad.after")].append(f"{ranks[0]['grad_norm']:.5f}")
        checks = [ranks[r]["grad_check"] for r in range(world)]
        table[t(P + "grad.gap")].append(f"{max(checks) - min(checks):.3g}")
    st.dataframe(table, hide_index=True)


def results(events: list[dict], spec: dd.RunSpec) -> None:
    compare = next((e for e in events if e.get("kind") == "compare"), None)
    ends = {e["run"]: e for e in events if e.get("kind") == "run_end"}
    c = st.columns(4)
    if compare:
        c[0].metric(t(P + "metric.gap"), f"{compare['loss_gap']:.2g}")
        c[1].metric(t(P + "metric.step1"), f"{compare['single_step_s'] * 1000:.0f} ms")
        c[2].metric(t(P + "metric.stepn", n=spec.nproc), f"{compare['step_s'] * 1000:.0f} ms")
        c[3].metric(t(P + "metric.ratio"), f"{compare['step_ratio']:.2f}")
        st.caption(t(P + "speed.note"))
    elif "main" in ends:
        steps = [e["step_s"] for e in events if e.get("kind") == "rank_step" and e["rank"] == 0 and e["step"] > 1]
        c[0].metric(t(P + "metric.stepn", n=spec.nproc), f"{statistics.median(steps) * 1000:.0f} ms" if steps else "–")
    if "main" in ends:
        st.caption(t(P + "run.seconds", s=f"{ends['main']['seconds']:.1f}", wall=f"{ends['main']['wall_s']:.0f}"))
    memory_bars(events, spec)


def stacked(fig: go.Figure, labels: list[str], parts: list[dict]) -> None:
    for part in PARTS:
        fig.add_bar(
            x=labels,
            y=[p[part] / 1e6 for p in parts],
            name=t(P + f"part.{part}"),
            marker_color=PART_COLORS[part],
            hovertemplate="%{x}: %{y:,.2f} MB<extra>" + t(P + f"part.{part}") + "</extra>",
        )
    fig.update_layout(barmode="stack", height=340, margin={"t": 30, "b": 40}, yaxis_title="MB")


def memory_bars(events: list[dict], spec: dd.RunSpec) -> None:
    mem = sorted((e for e in events if e.get("kind") == "memory" and e["run"] == "main"), key=lambda e: e["rank"])
    if not mem or mem[0]["predicted"] is None:
        return
    st.markdown(t(P + "mem.title"))
    labels, parts = [], []
    for e in mem:
        labels += [t(P + "mem.measured", rank=e["rank"]), t(P + "mem.predicted", rank=e["rank"])]
        parts += [e["measured"], e["predicted"]]
    fig = go.Figure()
    stacked(fig, labels, parts)
    st.plotly_chart(fig, key=P + "mem.chart")
    ratio = sum(mem[0]["measured"].values()) / mem[0]["predicted"]["total"]
    st.caption(t(P + "mem.note", ratio=f"{ratio:.3f}", strategy=t(P + f"strategy.{spec.strategy}")))


def live() -> None:
    job = shared_runner().get(st.session_state.get(P + "job"))

    @st.fragment(run_every=1.0 if job is not None and not job.done else None)
    def panel():
        current = shared_runner().get(st.session_state.get(P + "job"))
        spec = st.session_state.get(P + "spec")
        if current is not None and current.done and st.session_state.get(P + "job.taken") != current.id:
            take_finished()
            st.rerun(scope="app")
        if current is not None and not current.done:
            events = [e.data for e in current.events_since(0)]
            st.progress(current.progress or 0.0, text=t(P + "running", n=spec.nproc))
            if st.button(t(P + "stop"), key=P + "stop", icon=":material/stop:"):
                current.stop()
        else:
            events = st.session_state.get(P + "events")
            status, error = st.session_state.get(P + "status", (None, None))
            if status == FAILED:
                st.error(t(P + "failed"))
                st.code(error or "", language=None)
        if not events or spec is None:
            return
        st.plotly_chart(loss_figure(events, spec.nproc), key=P + "loss")
        st.markdown(t(P + "grad.title"))
        grad_table(events, spec.nproc)
        st.caption(t(P + f"grad.note.{spec.strategy}"))
        if current is None or current.done:
            results(events, spec)

    panel()


def shape_input():
    choice = st.selectbox(
        t(P + "calc.model"),
        CHOICES,
        key=follow_language(P + "calc.model"),
        format_func=lambda k: dd.PRESETS[k].name if k in dd.PRESETS else t(P + f"calc.{k}"),
        persist_state="session",
    )
    if choice == "scratch":
        return dd.gpt_shape(GPTConfig(vocab_size=shakespeare_vocab()))
    if choice in dd.PRESETS:
        return dd.PRESETS[choice]
    c = st.columns(4)
    keys = ("n_layer", "hidden", "n_head", "n_kv_head", "intermediate", "vocab", "seq")
    defaults = (24, 2048, 16, 16, 5632, 32000, 2048)
    values = {}
    for i, (k, d) in enumerate(zip(keys, defaults, strict=True)):
        values[k] = int(
            c[i % 4].number_input(t(P + f"calc.{k}"), 1, 1_000_000, d, key=P + f"calc.{k}", persist_state="session")
        )
    try:
        return dd.ModelShape("custom", **values)
    except ValueError as exc:
        st.warning(str(exc))
        return None


def calculator() -> None:
    st.markdown(t(P + "calc.title"))
    st.caption(t(P + "calc.intro"))
    shape = shape_input()
    if shape is None:
        return
    c = st.columns(4)
    ranks = int(c[0].number_input(t(P + "calc.ranks"), 1, 4096, 8, key=P + "calc.ranks", persist_state="session"))
    dtype = c[1].radio(
        t(P + "calc.dtype"),
        dd.DTYPES,
        key=follow_language(P + "calc.dtype"),
        format_func=lambda k: t(P + f"calc.dtype.{k}"),
        persist_state="session",
    )
    batch = int(c[2].number_input(t(P + "calc.batch"), 1, 512, 1, key=P + "calc.batch", persist_state="session"))
    seq = int(c[3].number_input(t(P + "calc.seq"), 1, 131072, shape.seq, key=P + "calc.seq", persist_state="session"))
    estimates = {s: dd.memory_per_rank(shape, ranks, s, dtype, batch, seq) for s in dd.STRATEGIES}
    fig = go.Figure()
    stacked(fig, [t(P + f"calc.strategy.{s}") for s in dd.STRATEGIES], [e.as_dict() for e in estimates.values()])
    fig.update_layout(yaxis_title="MB")
    st.plotly_chart(fig, key=P + "calc.chart")
    st.dataframe(
        {
            t(P + "calc.strategy"): [t(P + f"calc.strategy.{s}") for s in dd.STRATEGIES],
            **{t(P + f"part.{p}"): [human(getattr(e, p)) for e in estimates.values()] for p in PARTS},
            t(P + "calc.total"): [human(e.total) for e in estimates.values()],
        },
        hide_index=True,
    )
    st.caption(t(P + "calc.params", n=f"{dd.param_count(shape):,}"))
    st.caption(t(P + "calc.formula"))


def render() -> None:
    st.markdown(t(P + "intro"))
    take_finished()
    c1, c2, c3 = st.columns(3)
    with c1:
        nproc = st.radio(
            t(P + "nproc"), process_choices(), index=1, key=P + "nproc", horizontal=True, persist_state="session"
        )
    with c2:
        strategy = st.radio(
            t(P + "strategy"),
            STRATEGIES,
            key=follow_language(P + "strategy"),
            format_func=lambda k: t(P + f"strategy.{k}"),
            horizontal=True,
            persist_state="session",
        )
    with c3:
        steps = st.number_input(t(P + "steps"), 5, 500, 30, step=5, key=P + "steps", persist_state="session")
    st.caption(t(P + "cores", cores=os.cpu_count() or 1))
    spec = dd.RunSpec(nproc=int(nproc), strategy=strategy, steps=int(steps), batch=12)
    st.markdown(t(P + "command"))
    st.code(command_line(spec), language="bash")
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "run"), key=P + "run", type="primary", disabled=running, icon=":material/play_arrow:"):
        start(spec)
        st.rerun()
    live()
    calculator()
