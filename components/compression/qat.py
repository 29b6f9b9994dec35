"""The QAT vs PTQ tab: the demo GPT (real fp32 weights) quantized after training (PTQ), fine-tuned in
fp32 and then quantized (the control), and fine-tuned with the rounding in the loop (QAT, torchao),
at int4 and int8, as a background job: the loss curves while it trains, then a table and a bar chart of
perplexity, KLD and top-1 against the fp32 model."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from backends import compression as cp
from backends.core.jobs import shared_runner
from components.i18n import t
from components.live_job import live_panel
from components.option_labels import follow_language

P = "compression.qat."
COLOURS = {"ptq": "#e8590c", "finetune-ptq": "#868e96", "qat": "#2b8a3e", "finetune": "#adb5bd", "fp32": "#1971c2"}
PHASE_COLOURS = {"finetune": "#868e96", "qat-int4": "#2b8a3e", "qat-int8": "#74b816"}
RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
DEFAULT = cp.QATSettings()


def phase_name(phase: str) -> str:
    if phase.startswith("qat-int"):
        return t(P + "phase.qat", bits=phase.removeprefix("qat-int"))
    return t(P + "phase." + phase)


def method_name(method: str, bits: int) -> str:
    return t(P + "method." + method) + ("" if bits == 32 else f" int{bits}")


def controls() -> cp.QATSettings:
    c = st.columns(3)
    bits = c[0].multiselect(
        t(P + "bits"), [4, 8], default=[4, 8], key=P + "bits", format_func=lambda b: f"int{b}", persist_state="session"
    )
    group = c[1].select_slider(
        t(P + "group"), [16, 32, 64, 128], value=DEFAULT.group_size, key=P + "group", persist_state="session"
    )
    tokens = c[2].select_slider(
        t(P + "ppl_tokens"), [1024, 2048, 4096], value=2048, key=P + "ppl_tokens", persist_state="session"
    )
    c = st.columns(3)
    steps = c[0].slider(t(P + "steps"), 20, 400, DEFAULT.steps, 10, key=P + "steps", persist_state="session")
    rate = c[1].select_slider(
        t(P + "lr"),
        RATES,
        value=DEFAULT.learning_rate,
        key=P + "lr",
        format_func=lambda r: f"{r:.0e}",
        persist_state="session",
    )
    with c[2]:
        loss = st.radio(
            t(P + "loss"),
            ["kd", "ce"],
            key=follow_language(P + "loss"),
            format_func=lambda m: t(P + "loss." + m),
            persist_state="session",
        )
    st.caption(t(P + "loss_note." + loss))
    control = st.toggle(t(P + "control"), value=True, key=P + "control", persist_state="session")
    return cp.QATSettings(
        bits=tuple(sorted(bits)),
        group_size=int(group),
        steps=int(steps),
        learning_rate=float(rate),
        ppl_tokens=int(tokens),
        control=control,
        loss=loss,
    )


def start(settings: cp.QATSettings) -> None:
    st.session_state[P + "error"] = None
    try:
        settings.validate()
    except ValueError as exc:
        st.session_state[P + "error"] = str(exc)
        return
    st.session_state[P + "job"] = shared_runner().submit("compression.qat", cp.qat_job, settings).id


def finish(job) -> None:
    if job is not None and job.result is not None:
        st.session_state[P + "result"], job.result = job.result, None


def loss_figure(curves: dict[str, list[float]], kd: bool) -> go.Figure:
    fig = go.Figure()
    for phase, losses in curves.items():
        fig.add_scatter(
            x=list(range(1, len(losses) + 1)),
            y=losses,
            mode="lines",
            name=phase_name(phase),
            line={"color": PHASE_COLOURS.get(phase, "#495057")},
        )
    fig.update_layout(
        height=300,
        margin={"t": 30, "b": 40},
        xaxis_title=t(P + "chart.step"),
        yaxis_title=t(P + ("chart.loss_kd" if kd else "chart.loss_ce")),
        yaxis_type="log" if kd else "linear",
        legend={"orientation": "h", "y": -0.3},
    )
    return fig


def kld_figure(report) -> go.Figure:
    fig = go.Figure()
    x = [f"int{b}" for b in report.settings.bits]
    for method in ("ptq", "finetune-ptq", "qat"):
        rows = [report.row(method, b) for b in report.settings.bits]
        if any(r is not None for r in rows):
            fig.add_bar(
                x=x,
                y=[r.kld if r else None for r in rows],
                name=t(P + "method." + method),
                marker_color=COLOURS[method],
                hovertemplate="%{x}: %{y:.2e}<extra>" + t(P + "method." + method) + "</extra>",
            )
    drift = report.row("finetune", 32)
    if drift is not None and drift.kld > 0:  # what the fine-tune alone moved the model (no rounding)
        fig.add_scatter(
            x=x,
            y=[drift.kld] * len(x),
            mode="lines+markers",
            name=t(P + "chart.drift"),
            line={"color": COLOURS["finetune"], "dash": "dot"},
        )
    fig.update_layout(
        barmode="group",
        height=340,
        margin={"t": 30, "b": 40},
        yaxis_type="log",
        yaxis_title=t(P + "chart.kld"),
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def table(report) -> None:
    rows = []
    for r in report.rows:
        rows.append(
            {
                t(P + "table.method"): method_name(r.method, r.bits),
                t(P + "table.ppl"): round(r.perplexity, 3),
                t(P + "table.kld"): f"{r.kld:.2e}" if r.kld else "0",
                t(P + "table.top1"): f"{r.top1:.1%}",
                t(P + "table.grid"): "–" if r.on_grid is None else t(P + ("yes" if r.on_grid else "no")),
            }
        )
    st.dataframe(rows, hide_index=True)


def verdict(report) -> None:
    for bits in report.settings.bits:
        ptq, qat, ctl = (report.row(m, bits) for m in ("ptq", "qat", "finetune-ptq"))
        if ptq is None or qat is None or not qat.kld:
            continue
        key = "verdict.better" if qat.kld < ptq.kld else "verdict.worse"
        extra = t(P + "verdict.control", kld=f"{ctl.kld:.2e}") if ctl is not None else ""
        st.markdown(
            t(P + key, bits=bits, qat=f"{qat.kld:.2e}", ptq=f"{ptq.kld:.2e}", ratio=f"{ptq.kld / qat.kld:.1f}")
            + " "
            + extra
        )


def results(report) -> None:
    s = report.settings
    st.success(
        t(P + "done", model=report.model, steps=s.steps, s=f"{report.seconds:.0f}", tokens=report.rows[0].tokens)
        if report.rows
        else t(P + "stopped_early")
    )
    if not report.rows:
        return
    verdict(report)
    c1, c2 = st.columns(2)
    with c1:
        st.markdown(t(P + "chart.kld_title"))
        st.plotly_chart(kld_figure(report), key=P + "chart_kld")
    with c2:
        st.markdown(t(P + "chart.loss_title"))
        st.plotly_chart(loss_figure(report.curves, s.loss == "kd"), key=P + "chart_loss")
    table(report)
    gaps = ", ".join(f"int{b}: {g:.1e}" for b, g in report.fake_vs_real.items())
    st.caption(t(P + "table_note", group=s.group_size, gaps=gaps or "–"))
    if s.loss == "ce":
        st.info(t(P + "ce_note"))


def live() -> None:
    def progress(job, events):
        last = events[-1].message if events else t(P + "starting")
        return job.progress or 0.0, t(P + "progress", step=last, s=f"{job.elapsed:.0f}")

    def draw(job, events):
        if job.done:
            return
        curves: dict[str, list[float]] = {}
        for e in events:
            if e.data.get("kind") == "step":
                curves.setdefault(e.data["phase"], []).append(e.data["loss"])
        if curves:
            kd = st.session_state.get(P + "loss", "kd") == "kd"
            st.plotly_chart(loss_figure(curves, kd), key=P + "chart_live")

    live_panel(P, finish, progress, draw)


def render() -> None:
    st.markdown(t(P + "intro"))
    settings = controls()
    job = shared_runner().get(st.session_state.get(P + "job"))
    st.button(
        t(P + "start"),
        key=P + "start",
        type="primary",
        icon=":material/play_arrow:",
        disabled=(job is not None and not job.done) or not settings.bits,
        on_click=start,
        args=(settings,),
    )
    if st.session_state.get(P + "error"):
        st.error(st.session_state[P + "error"])
    live()
    report = st.session_state.get(P + "result")
    if report is None:
        st.info(t(P + "none_yet"))
        return
    results(report)
