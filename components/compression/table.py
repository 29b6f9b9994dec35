"""The comparable table: pruning, calibrated 4-bit, static int8 and the rounding formats, each built on a
copy of one model and measured by the quantization page's harness (size, speed, perplexity with its
interval, KLD and top-1 against the baseline), drawn on the same size-vs-quality and speed charts."""

from __future__ import annotations

import streamlit as st

from backends import compression as cp
from backends import quantization as q
from backends.core.jobs import shared_runner
from components.i18n import t
from components.live_job import live_panel
from components.model_picker import add_session_model, load_or_explain, model_picker
from components.option_labels import follow_language
from components.quantization.charts import size_quality_figure, speed_figure
from components.quantization.table import label, raw_reasons, table

P = "compression.table."
PPL_CHOICES = (1_024, 2_048, 5_120)


def pick_model():
    """The model every row is built from (the picker, or the GPT trained here with real fp32 weights)."""
    left, right = st.columns([2, 1])
    with right:
        st.caption(t(P + "real_note"))
        st.button(t(P + "use_real"), key=P + "use_real", icon=":material/model_training:", on_click=use_real)
        if st.session_state.get(P + "real_error"):
            st.error(st.session_state[P + "real_error"])
    with left:
        name = model_picker("compression", kinds=("causal-lm",), default="smollm2-135m-instruct")
    return (name, load_or_explain(name)) if name else (None, None)


def use_real() -> None:
    """Train (once, ~45 s) or reuse the quantization page's GPT and pick it."""
    st.session_state[P + "real_error"] = None
    try:
        folder = str(q.train_demo_gpt())
    except (RuntimeError, OSError) as exc:
        st.session_state[P + "real_error"] = t(P + "real_failed", error=str(exc))
        return
    add_session_model(q.DEMO_GPT_NAME, folder)
    st.session_state["compression.model"] = folder


def plan_panel(model) -> None:
    """What the methods will do to this model, from its shapes: its weights, the attention + MLP share the
    pruning rows work on, and what structured pruning at 30% removes from every block."""
    total = sum(p.numel() for p in model.parameters())
    prunable = cp.prunable_params(model)
    try:
        plan = cp.make_plan(model, 0.3)
        shape = cp.structured_shape(model)
        unit = cp.unit_params(model)
    except (ValueError, AttributeError, KeyError):  # an architecture structured pruning does not know
        plan = None
    cols = st.columns(4)
    cols[0].metric(t(P + "plan.params"), f"{total:,}")
    cols[1].metric(t(P + "plan.prunable"), f"{prunable:,}", help=t(P + "plan.prunable_help"))
    if plan is None:
        st.caption(t(P + "plan.unknown"))
        return
    per_group = shape["heads"] // shape["kv_heads"]
    heads = plan.heads_per_group_removed * shape["kv_heads"] + plan.groups_removed * per_group
    n_blocks = len(cp.decoder_blocks(model))
    removed = n_blocks * (
        heads * unit["q_head"] + plan.groups_removed * unit["kv_head"] + plan.channels_removed * unit["channel"]
    )
    cols[2].metric(t(P + "plan.heads"), f"{heads} / {shape['heads']}")
    cols[3].metric(t(P + "plan.channels"), f"{plan.channels_removed} / {shape['intermediate']}")
    added = n_blocks * bias_added(model, shape, heads, plan.groups_removed, plan.channels_removed)
    st.caption(
        t(P + "plan.after", params=f"{total - removed + added:,}", share=f"{removed / prunable:.1%}")
        + (" " + t(P + "plan.bias", n=f"{added:,}") if added else "")
    )


def bias_added(model, shape: dict, heads: int, groups: int, channels: int) -> int:
    """Bias entries one block gains where structured pruning folds the removed units' mean output into a
    bias the layer did not have (a Llama block: q, k, v, o, gate, up, down; GPT-NeoX has them all)."""
    block = cp.decoder_blocks(model)[0]
    attn, mlp = getattr(block, "self_attn", None), getattr(block, "mlp", None)
    if attn is None or not hasattr(attn, "q_proj") or attn.q_proj.bias is not None:
        return 0
    hd, d = shape["head_dim"], shape["hidden"]
    q_rows = (shape["heads"] - heads) * hd
    kv_rows = 2 * (shape["kv_heads"] - groups) * hd
    mlp_rows = 0 if mlp.gate_proj.bias is not None else 2 * (shape["intermediate"] - channels) + d
    return q_rows + kv_rows + d + mlp_rows


def settings(device: str, baseline) -> tuple[list[str], int, int]:
    reasons = q.availability(device, every=True)
    usable = [s.key for s in q.all_specs() if reasons[s.key] is None]
    default = [k for k in cp.TABLE_DEFAULT if k in usable]
    chosen = st.multiselect(
        t(P + "variants"),
        usable,
        default=default,
        format_func=lambda key: label(key, baseline),
        key=follow_language(P + "variants"),
        persist_state="session",
    )
    a, b = st.columns(2)
    tokens = a.select_slider(
        t(P + "ppl_tokens"), PPL_CHOICES, value=cp.TABLE_PPL_TOKENS, key=P + "ppl_tokens", persist_state="session"
    )
    runs = int(b.number_input(t(P + "runs"), 1, 10, cp.TABLE_RUNS, key=P + "runs", persist_state="session"))
    slow = [label(k, baseline) for k in cp.SLOW_ROWS if reasons.get(k) is None and k not in chosen]
    if slow:
        st.caption(t(P + "slow", rows=", ".join(slow)))
    missing = [label(k, baseline) for k in cp.TABLE_DEFAULT + cp.SLOW_ROWS if reasons.get(k)]
    if missing:
        st.caption(t(P + "missing", rows=", ".join(missing)))
    return chosen, tokens, runs


def start(loaded, name: str, chosen: list[str], tokens: int, runs: int) -> None:
    st.session_state[P + "error"] = None
    try:
        conf = q.BenchConfig(variants=tuple(chosen), ppl_tokens=tokens, runs=runs).validate()
    except ValueError as exc:
        st.session_state[P + "error"] = str(exc)
        return
    job = shared_runner().submit(
        "compression.table",
        q.run_job,
        loaded.model,
        loaded.tokenizer,
        conf,
        name,
        loaded.key.device,
        q.describe(loaded),
    )
    st.session_state[P + "job"] = job.id


def finish(job) -> None:
    if job.result is not None:
        st.session_state[P + "report"], job.result = job.result, None


def progress(job, events) -> tuple[float, str]:
    last = events[-1].message if events else t(P + "starting")
    return min(job.progress or 0.0, 1.0), t(P + "progress", step=last, s=f"{job.elapsed:.0f}")


def draw_live(baseline):
    def draw(job, events):
        rows = [q.VariantResult.from_dict(e.data["row"]) for e in events if e.data.get("kind") == "row"]
        if rows and not job.done:
            table(rows, "compression_live", baseline)

    return draw


def results(report) -> None:
    ok = [r for r in report.rows if r.status == q.OK]

    def name(r) -> str:
        return label(r.key, report.baseline)

    st.success(t(P + "done", n=len(ok), total=len(report.rows), s=f"{report.seconds:.0f}", model=report.model))
    table(report.rows, "compression_results", report.baseline)
    raw_reasons([(name(r), r.error) for r in report.rows if r.status in ("unavailable", "failed") and r.error])
    st.caption(t(P + "table_note", tokens=report.config.ppl_tokens, baseline=label("fp32", report.baseline)))
    c1, c2 = st.columns(2)
    c1.plotly_chart(size_quality_figure(ok, (), name), key=P + "chart_size")
    c2.plotly_chart(speed_figure(ok, (), name), key=P + "chart_speed")
    st.caption(t(P + "speed_note"))


def render() -> None:
    st.markdown(t(P + "intro"))
    name, loaded = pick_model()
    if loaded is None:
        return
    baseline = q.describe(loaded)
    st.caption(
        t(
            f"quantization.baseline.note.{baseline.form}",
            weights=baseline.weights,
            mix=baseline.mix,
            location=baseline.location,
        )
    )
    plan_panel(loaded.model)
    chosen, tokens, runs = settings(loaded.key.device, baseline)
    job = shared_runner().get(st.session_state.get(P + "job"))
    st.button(
        t(P + "start"),
        key=P + "start",
        type="primary",
        icon=":material/play_arrow:",
        disabled=job is not None and not job.done,
        on_click=start,
        args=(loaded, name, chosen, tokens, runs),
    )
    if st.session_state.get(P + "error"):
        st.error(st.session_state[P + "error"])
    live_panel(P, finish, progress, draw_live(baseline))
    report = st.session_state.get(P + "report")
    if report is not None:
        results(report)
    elif job is None:
        st.info(t(P + "none_yet"))
