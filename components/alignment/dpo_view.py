"""The Alignment page's third step: DPO trained live on preference pairs, and its effect measured.

The job is backends/alignment/live.py (the fast DPO trainer, then greedy answers to held-out prompts);
this view starts it, draws its step events as they arrive, and compares base, SFT and DPO by the
shipped set's rule.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from backends.alignment import config, live, rule
from backends.alignment import dpo as dpo_math
from backends.alignment import sft as S
from backends.core.jobs import shared_runner
from backends.models.registry import find_spec
from components.alignment.sft_view import ADAPTERS
from components.i18n import current_lang, t
from components.job_status import newly_finished
from components.live_job import live_panel
from components.option_labels import follow_language
from components.show_code import show_code
from components.sidebar import current_device

P = "alignment.dpo."
IMPORTED = "alignment.imported_pairs"  # list[Pair] from the arena (its votes, or an imported file)
N_PROMPTS = 20  # held-out prompts judged after a run (greedy, batched)
BETAS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
COLORS = {"chosen": "#2b8a3e", "rejected": "#c92a2a", "margin": "#1971c2", "loss": "#6c4cf4", "kl": "#e8590c"}


def prompts() -> list[str]:
    return rule.heldout_prompts()[:N_PROMPTS]


def pairs_source() -> tuple[list | None, str]:
    source = st.session_state.get(P + "source", "shipped")
    if source == "shipped":
        return rule.shipped_pairs(), source
    imported = st.session_state.get(IMPORTED) or []
    return (imported or None), source


def start(loaded, name: str, pairs: list, settings) -> None:
    st.session_state[P + "error"] = None
    try:
        settings.validate(loaded.model)
    except ValueError as exc:
        st.session_state[P + "error"] = str(exc)
        return
    sft_model = st.session_state.get(ADAPTERS, {}).get("sft")
    job = shared_runner().submit(
        "alignment-dpo",
        live.live_dpo_job,
        loaded.model,
        loaded.tokenizer,
        name,
        list(pairs),
        settings,
        prompts(),
        sft_model,
    )
    st.session_state[P + "job"] = job.id
    st.session_state[P + "record"] = {"job": job.id, "settings": settings, "pairs": len(pairs)}


def _steps(job) -> list[dict]:
    return [e.data for e in job.events_since(0) if e.data.get("kind") == "step"]


def finish(job) -> None:
    record = st.session_state.get(P + "record")
    if record is None or record["job"] != job.id:
        return
    result, job.result = job.result, None  # the trained copy lives in this session only
    record.update(steps=_steps(job), seconds=job.elapsed)
    if result is None:
        record["error"] = job.error or job.status
        return
    record.update(
        stop_reason=result.train.stop_reason,
        prepare_s=result.train.prepare_seconds,
        train_s=result.train.seconds,
        judged=result.judged,
        sft=result.sft_judged,
        cache_mb=result.cache_bytes / 2**20,
    )
    st.session_state.setdefault(ADAPTERS, {})["dpo"] = result.train.model


def absorb_finished() -> None:
    job = newly_finished(P + "job")
    if job is not None:
        finish(job)


def charts(steps: list[dict], probe_every: int = config.DpoSettings.probe_every) -> go.Figure:
    x = [s["step"] for s in steps]
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            t("alignment.dpo.chart.loss"),
            t("alignment.dpo.chart.rewards"),
            t("alignment.dpo.chart.accuracy"),
            t("alignment.dpo.chart.kl"),
        ),
        vertical_spacing=0.16,
    )

    def line(y, name, color, row, col, dash=None):
        fig.add_trace(
            go.Scatter(x=x, y=y, name=name, mode="lines", line=dict(color=color, dash=dash)), row=row, col=col
        )

    line([s["loss"] for s in steps], t("alignment.dpo.chart.loss"), COLORS["loss"], 1, 1)
    line([s["reward_chosen"] for s in steps], t("alignment.dpo.chart.chosen"), COLORS["chosen"], 1, 2)
    line([s["reward_rejected"] for s in steps], t("alignment.dpo.chart.rejected"), COLORS["rejected"], 1, 2)
    line([s["margin"] for s in steps], t("alignment.dpo.chart.margin"), COLORS["margin"], 1, 2, "dot")
    line([s["accuracy"] for s in steps], t("alignment.dpo.chart.accuracy"), COLORS["margin"], 2, 1)
    kl = [(s["step"], s["kl"]) for s in steps if s.get("kl") is not None]
    fig.add_trace(
        go.Scatter(
            x=[k[0] for k in kl],
            y=[k[1] for k in kl],
            name=t("alignment.dpo.chart.kl"),
            mode="lines+markers",
            line=dict(color=COLORS["kl"]),
        ),
        row=2,
        col=2,
    )
    if not kl:  # the KL probe runs every `probe_every` steps: say so rather than draw empty axes
        fig.add_annotation(
            text=t("alignment.dpo.chart.kl_wait", n=probe_every) if probe_every else t("alignment.dpo.chart.kl_off"),
            xref="x4 domain",
            yref="y4 domain",
            x=0.5,
            y=0.5,
            showarrow=False,
            font=dict(color="#868e96"),
        )
        fig.update_xaxes(showticklabels=False, row=2, col=2)
        fig.update_yaxes(showticklabels=False, row=2, col=2)
    fig.update_yaxes(range=[-0.02, 1.02], row=2, col=1)
    fig.update_xaxes(title_text=t("alignment.dpo.chart.step"), row=2)
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.15))
    return fig


def _progress(job, events) -> tuple[float, str]:
    steps = [e.data for e in events if e.data.get("kind") == "step"]
    if any(e.data.get("kind") == "judging" for e in events):
        text = t("alignment.dpo.judging", n=len(prompts()))
    elif steps:
        text = t("alignment.dpo.progress", step=steps[-1]["step"], eta=f"{steps[-1].get('eta_s', 0):.0f}")
    else:
        text = t("alignment.dpo.preparing", s=f"{job.elapsed:.0f}")
    return job.progress or 0.0, text


def _draw(job, events) -> None:
    steps = [e.data for e in events if e.data.get("kind") == "step"]
    if steps:
        last = steps[-1]
        m = st.columns(5)
        m[0].metric(t("alignment.dpo.chart.loss"), f"{last['loss']:.3f}")
        m[1].metric(t("alignment.dpo.metric.margin"), f"{last['margin']:.3f}")
        m[2].metric(t("alignment.dpo.chart.accuracy"), f"{last['accuracy']:.0%}")
        kls = [s["kl"] for s in steps if s.get("kl") is not None]
        m[3].metric(t("alignment.dpo.chart.kl"), f"{kls[-1]:.4f}" if kls else "–")
        m[4].metric(t("alignment.dpo.pairs_s"), f"{last['pairs_per_s']:.1f}")
    if len(steps) >= 2:
        record = st.session_state.get(P + "record") or {}
        probe_every = getattr(record.get("settings"), "probe_every", config.DpoSettings.probe_every)
        st.plotly_chart(charts(steps, probe_every), key=P + "charts")


def live_view() -> None:
    live_panel(P, finish, _progress, _draw)


def results(name: str) -> None:
    record = st.session_state.get(P + "record")
    if not record or "steps" not in record:
        return
    if record.get("error"):
        st.error(t("lora.train.failed", error=record["error"]))
        return
    st.subheader(t("alignment.dpo.after.title"))
    st.caption(
        t(
            "alignment.dpo.after.timing",
            pairs=record["pairs"],
            steps=len(record["steps"]),
            prepare=f"{record['prepare_s']:.0f}",
            train=f"{record['train_s']:.0f}",
            mb=f"{record['cache_mb']:.0f}",
        )
    )
    base = S.judge_base(name, prompts(), current_device(), rule_tokens())
    judged = {t("alignment.sft.base"): base}
    if record.get("sft") is not None:
        judged["SFT"] = record["sft"]
    judged["DPO"] = record["judged"]
    rows = [
        {
            t("alignment.sft.col.model"): label,
            t("alignment.dpo.col.rule", words=rule.MAX_WORDS): f"{j.brief:.0%}",
            t("alignment.dpo.col.words"): round(
                sum(rule.word_count(a.text) for a in j.answers) / max(len(j.answers), 1), 1
            ),
        }
        for label, j in judged.items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=P + "rule_table")
    st.caption(t("alignment.dpo.after.note", n=len(prompts()), words=rule.MAX_WORDS))
    table = {t("alignment.sft.col.prompt"): prompts()}
    for label, j in judged.items():
        table[label] = [("✅ " if a.follows else "❌ ") + a.text for a in j.answers]
    st.table(pd.DataFrame(table).set_index(t("alignment.sft.col.prompt")))
    if current_lang() != "en":
        st.caption(t("alignment.english_only"))


def rule_tokens() -> int:
    return live.ANSWER_TOKENS


def settings_view(n_layers: int):
    c1, c2 = st.columns(2)
    with c1:
        beta = st.select_slider(t("alignment.dpo.beta"), BETAS, value=0.1, key=P + "beta", persist_state="session")
        st.caption(t("alignment.dpo.beta.note"))
        loss_type = st.radio(
            t("alignment.dpo.loss_type"),
            list(dpo_math.LOSS_TYPES),
            key=follow_language(P + "loss_type"),
            persist_state="session",
            format_func=lambda v: t(f"alignment.dpo.loss_type.{v}"),
        )
    defaults = config.DpoSettings()
    with c2:
        epochs = st.number_input(
            t("alignment.dpo.epochs"),
            1,
            10,
            int(defaults.epochs),
            key=P + "epochs",
            persist_state="session",
            help=t("alignment.dpo.epochs.help"),
        )
        top = st.slider(
            t("alignment.dpo.top_layers"),
            1,
            n_layers,
            defaults.top_layers,
            key=P + "top_layers",
            persist_state="session",
        )
        st.caption(t("alignment.dpo.top_layers.note", n=n_layers))
    return defaults.replace(beta=float(beta), loss_type=loss_type, epochs=float(epochs), top_layers=int(top))


def dpo_tab(loaded, name: str) -> None:
    st.markdown(t("alignment.dpo.intro", words=rule.MAX_WORDS))
    st.radio(
        t("alignment.dpo.source"),
        ["shipped", "arena"],
        horizontal=True,
        key=follow_language(P + "source"),
        persist_state="session",
        format_func=lambda s: t(f"alignment.dpo.source.{s}"),
    )
    pairs, source = pairs_source()
    if pairs is None:
        st.info(t("alignment.dpo.no_pairs"))
        return
    st.caption(t(f"alignment.dpo.source.{source}.note", n=len(pairs), words=rule.MAX_WORDS))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("alignment.dpo.col.prompt"): p.prompt,
                    t("alignment.dpo.col.chosen"): p.chosen,
                    t("alignment.dpo.col.rejected"): p.rejected,
                    t("alignment.dpo.col.words_cr"): f"{rule.word_count(p.chosen)} / {rule.word_count(p.rejected)}",
                }
                for p in pairs[:200]
            ]
        ),
        hide_index=True,
        key=P + "pairs",
        height=220,
    )
    settings = settings_view(loaded.model.config.num_hidden_layers)
    with st.expander(t("alignment.dpo.shortcuts.title")):
        st.markdown(t("alignment.dpo.shortcuts"))
    st.caption(t("alignment.dpo.threads_note"))
    job = shared_runner().get(st.session_state.get(P + "job"))
    if st.button(
        t("alignment.dpo.start"),
        type="primary",
        key=P + "start",
        icon=":material/play_arrow:",
        disabled=job is not None and not job.done,
    ):
        start(loaded, name, pairs, settings)
        st.rerun()
    if st.session_state.get(P + "error"):
        st.error(st.session_state[P + "error"])
    live_view()
    results(name)
    with st.expander(t("alignment.dpo.code.title")):
        st.markdown(t("alignment.dpo.code.note"))
        st.code(settings.snippet(find_spec(name).hub_id if find_spec(name) else name), language="python")
    show_code(dpo_math.dpo_loss, dpo_math.sequence_logps)


def rl_note() -> None:
    with st.expander(t("alignment.rl.title")):
        st.markdown(t("alignment.rl.body"))
        st.code(live.grpo_snippet(), language="python")
