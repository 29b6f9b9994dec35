"""The Alignment page's first step: the chat template with its loss tokens, and SFT runs compared.

Training is the LoRA page's job (backends/lora/train.py) through backends/alignment/sft.py; this
view only starts it, follows it and compares finished runs with the base model.
"""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from backends.alignment import rule
from backends.alignment import sft as S
from backends.core.jobs import shared_runner
from backends.lora import data as D
from backends.lora import train as L
from backends.lora.config import LOSS_ON, LoraSettings, SettingsError
from components.backend_text import said
from components.builtin_text import file_uploader
from components.i18n import current_lang, t
from components.job_status import newly_finished
from components.live_job import live_panel
from components.lora.charts import loss_figure
from components.option_labels import follow_language
from components.show_code import show_code
from components.sidebar import current_device

P = "alignment.sft."
ADAPTERS = "alignment.adapters"  # name ("sft", "dpo") -> this session's trained PeftModel
UPLOAD_MAX_MB = 20
N_PROMPTS = 8  # held-out prompts each run answers (greedy, batched)
_LOSS = "#b2f2bb"
_NO_LOSS = "#e9ecef"


def runs() -> list[dict]:
    return st.session_state.setdefault(P + "runs", [])


def prompts() -> list[str]:
    return rule.heldout_prompts()[:N_PROMPTS]


def _examples() -> tuple[list | None, str | None]:
    if st.session_state.get(P + "source", "shipped") == "shipped":
        return D.shipped_examples(), None
    upload = st.session_state.get(P + "upload")
    if upload is None:
        return None, t("lora.data.upload_first")
    if upload.size > UPLOAD_MAX_MB * 2**20:
        return None, t("lora.data.too_big", mb=UPLOAD_MAX_MB, size=f"{upload.size / 2**20:.1f}")
    try:
        return D.parse_upload(upload.name, upload.getvalue()), None
    except D.DataError as exc:  # the LoRA page's checks and wording
        return None, said(exc, "lora.data.error.")


def chips(tokens: list[S.LossToken], loss_on: str) -> str:
    out = []
    for tok in tokens:
        carries = loss_on == "all" or tok.response
        style = (
            f"background:{_LOSS if carries else _NO_LOSS};border-radius:4px;padding:1px 3px;margin:1px;"
            "display:inline-block;font-family:monospace;font-size:0.8em;white-space:pre;"
            + ("" if carries else "color:#868e96;")
        )
        label = tok.text.replace("\n", "↵")
        title = f"id {tok.token_id} · " + t("alignment.sft.chip." + ("loss" if carries else "no_loss"))
        out.append(f'<span title="{html.escape(title)}" style="{style}">{html.escape(label) or "&nbsp;"}</span>')
    return f'<div style="line-height:1.9">{"".join(out)}</div>'


def template_view(tokenizer, examples: list) -> None:
    st.subheader(t("alignment.sft.template.title"))
    index = st.number_input(
        t("alignment.sft.template.example"), 0, len(examples) - 1, 0, key=P + "example", persist_state="session"
    )
    tokens = S.loss_tokens(tokenizer, examples[int(index)])
    n_resp = sum(tok.response for tok in tokens)
    left, right = st.columns(2)
    with left:
        st.markdown(t("alignment.sft.template.response", n=n_resp, total=len(tokens)))
        st.markdown(chips(tokens, "response"), unsafe_allow_html=True)
    with right:
        st.markdown(t("alignment.sft.template.all", n=len(tokens), total=len(tokens)))
        st.markdown(chips(tokens, "all"), unsafe_allow_html=True)
    st.caption(t("alignment.sft.template.legend"))


def start(loaded, name: str, examples: list, loss_on: str, steps: int, lr: float) -> None:
    st.session_state[P + "error"] = None
    settings = LoraSettings(loss_on=loss_on, max_steps=steps, learning_rate=lr, sample_every=0, eval_every=10)
    try:
        prepared = L.prepare(loaded.tokenizer, examples, settings, loaded.model)
    except (D.DataError, SettingsError) as exc:
        st.session_state[P + "error"] = said(exc, "lora.data.error.") if isinstance(exc, D.DataError) else str(exc)
        return
    job = shared_runner().submit("alignment-sft", S.sft_job, loaded.model, loaded.tokenizer, prepared, name, prompts())
    runs().append({"job": job.id, "loss_on": loss_on, "steps": steps, "lr": lr, "status": "running"})
    st.session_state[P + "job"] = job.id


def _split(events) -> tuple[list, list]:
    """A run's events as (training steps, evaluations)."""
    steps, evals = [], []
    for event in events:
        kind = event.data.get("kind")
        if kind == "step":
            steps.append(event.data)
        elif kind == "eval":
            evals.append(event.data)
    return steps, evals


def _events(job) -> tuple[list, list]:
    return _split(job.events_since(0))


def finish(job) -> None:
    record = next((r for r in runs() if r["job"] == job.id), None)
    if record is None:
        return
    steps, evals = _events(job)
    result, job.result = job.result, None  # the trained copy lives in this session only
    record.update(curve=steps, evals=evals, seconds=job.elapsed)
    if result is None:
        record["status"] = "failed"
        record["error"] = job.error or job.status
        return
    record.update(
        status=result.train.stop_reason,
        eval_loss=result.eval_loss,
        pirate=result.judged.pirate,
        brief=result.judged.brief,
        answers=[a.text for a in result.judged.answers],
    )
    st.session_state.setdefault(ADAPTERS, {})["sft"] = result.train.model
    st.session_state[ADAPTERS + ".sft_label"] = t(f"alignment.sft.loss_on.{result.loss_on}")


def absorb_finished() -> None:
    """A run that ended while another tab was open still reaches the comparison and the arena."""
    job = newly_finished(P + "job")
    if job is not None:
        finish(job)


def _progress(job, events) -> tuple[float, str]:
    steps, _ = _split(events)
    record = next((r for r in runs() if r["job"] == job.id), {})
    total = record.get("steps", 1)
    if any(e.data.get("kind") == "judging" for e in events):
        text = t("alignment.sft.judging")
    else:
        text = t("alignment.sft.progress", step=len(steps), total=total, s=f"{job.elapsed:.0f}")
    return len(steps) / max(total, 1), text


def _draw(job, events) -> None:
    steps, evals = _split(events)
    if len(steps) >= 2:
        st.plotly_chart(loss_figure(steps, evals, False), key=P + "chart")


def live() -> None:
    live_panel(P, finish, _progress, _draw)


def comparison(name: str) -> None:
    done = [r for r in runs() if "answers" in r]
    failed = [r for r in runs() if r.get("status") == "failed"]
    for r in failed:
        st.error(t("lora.train.failed", error=r.get("error", "")))
    if not done:
        st.info(t("alignment.sft.none"))
        return
    base = S.judge_base(name, prompts(), current_device())  # computed by the first run's job: a memo hit
    rows = [
        {
            t("alignment.sft.col.model"): t("alignment.sft.base"),
            t("alignment.sft.col.eval_loss"): "–",  # not measured for the base model (an empty cell reads "None")
            t("alignment.sft.col.pirate"): f"{base.pirate:.0%}",
            t("alignment.sft.col.brief"): f"{base.brief:.0%}",
        }
    ]
    answers = {t("alignment.sft.col.prompt"): prompts(), t("alignment.sft.base"): [a.text for a in base.answers]}
    for i, r in enumerate(done, 1):
        label = f"#{i} " + t(f"alignment.sft.loss_on.{r['loss_on']}") + f" · {r['steps']} " + t("alignment.sft.steps")
        rows.append(
            {
                t("alignment.sft.col.model"): label,
                t("alignment.sft.col.eval_loss"): "–" if r["eval_loss"] is None else f"{r['eval_loss']:.4f}",
                t("alignment.sft.col.pirate"): f"{r['pirate']:.0%}",
                t("alignment.sft.col.brief"): f"{r['brief']:.0%}",
            }
        )
        answers[label] = r["answers"]
    st.subheader(t("alignment.sft.compare.title"))
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=P + "table")
    st.caption(t("alignment.sft.compare.note", n=len(prompts()), words=rule.MAX_WORDS))
    st.table(pd.DataFrame(answers).set_index(t("alignment.sft.col.prompt")))
    if current_lang() != "en":
        st.caption(t("alignment.english_only"))


def sft_tab(loaded, name: str) -> None:
    st.markdown(t("alignment.sft.intro"))
    source = st.radio(
        t("lora.data.source"),
        ["shipped", "upload"],
        horizontal=True,
        key=follow_language(P + "source"),
        persist_state="session",
        format_func=lambda s: t(f"lora.data.source.{s}"),
    )
    if source == "upload":
        file_uploader(
            t("lora.data.upload"),
            type=["jsonl", "json", "csv"],
            key=P + "upload",
            max_upload_size=UPLOAD_MAX_MB,
            help=t("lora.data.upload_help", mb=UPLOAD_MAX_MB),
        )
    examples, problem = _examples()
    if examples is None:
        (st.error if st.session_state.get(P + "upload") is not None else st.info)(problem)
        return
    st.caption(t("lora.data.loaded", n=len(examples)))
    template_view(loaded.tokenizer, examples)

    st.subheader(t("alignment.sft.train.title"))
    c1, c2, c3 = st.columns(3)
    loss_on = c1.radio(
        t("alignment.sft.loss_on"),
        list(LOSS_ON),
        key=follow_language(P + "loss_on"),
        persist_state="session",
        format_func=lambda v: t(f"alignment.sft.loss_on.{v}"),
    )
    steps = c2.number_input(t("alignment.sft.steps_input"), 2, 400, 30, key=P + "steps_n", persist_state="session")
    lr = c3.select_slider(
        t("lora.cfg.lr"), [1e-4, 2e-4, 5e-4, 1e-3, 2e-3], value=1e-3, key=P + "lr", persist_state="session"
    )
    st.caption(t("alignment.sft.train.note"))
    job = shared_runner().get(st.session_state.get(P + "job"))
    if st.button(
        t("alignment.sft.start"),
        type="primary",
        key=P + "start",
        icon=":material/play_arrow:",
        disabled=job is not None and not job.done,
    ):
        start(loaded, name, examples, loss_on, int(steps), float(lr))
        st.rerun()
    if st.session_state.get(P + "error"):
        st.error(st.session_state[P + "error"])
    live()
    comparison(name)
    show_code(S.loss_tokens, S.sft_job)
