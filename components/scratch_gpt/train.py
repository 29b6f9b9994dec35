"""The GPT-from-scratch page's training: the runs of this session, starting and finishing one, the live view."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from backends.core.jobs import FAILED, STOPPED, shared_runner
from backends.scratch_gpt import Checkpoint, Prepared, train_job
from components.i18n import t
from components.job_status import newly_finished
from components.scratch_gpt.charts import loss_figure

P = "scratch_gpt."


def runs() -> list[dict]:
    return st.session_state.setdefault(P + "runs", [])


def collect(job) -> tuple[list, list, list]:
    steps, evals, samples = [], [], []
    for event in job.events_since(0):
        kind = event.data.get("kind")
        (steps if kind == "step" else evals if kind == "eval" else samples if kind == "sample" else []).append(
            event.data
        )
    return steps, evals, samples


def start_run(prepared: Prepared, config, settings, resume: Checkpoint | None = None) -> None:
    job = shared_runner().submit("scratch_gpt", train_job, prepared, config, settings, resume)
    n = len(runs()) + 1
    label = f"#{n}" + (f" ← #{resume_label(resume)}" if resume is not None else "")
    runs().append(
        {
            "job": job.id,
            "label": label,
            "corpus": prepared.name,
            "positions": config.positions,
            "config": config.to_dict(),
            "settings": settings.to_dict(),
            "steps": [],
            "evals": [],
            "samples": [],
            "status": "running",
            "seconds": 0.0,
            "prior": (resume.history if resume is not None else []),
        }
    )
    st.session_state[P + "job"] = job.id


def resume_label(ckpt: Checkpoint) -> str:
    return next((r["label"] for r in runs() if r.get("checkpoint") is ckpt), "?").lstrip("#")


def finish_run(job) -> None:
    """The finished (or stopped) run's model becomes this session's model; its curves go to the history."""
    record = next((r for r in runs() if r["job"] == job.id), None)
    if record is None:
        return
    result, job.result = job.result, None  # the shared runner keeps finished jobs; the model lives here only
    record.update(status=job.status, error=job.error)
    if isinstance(result, Checkpoint):
        steps = [e for e in result.history if e["kind"] == "step"]
        record.update(
            steps=steps,
            evals=result.evals(),
            seconds=result.seconds,
            checkpoint=result,
            samples=[e for e in result.history if e["kind"] == "sample"],
        )
        for old in runs():  # keep only the latest model (a copy per run would pile up)
            if old is not record:
                old.pop("checkpoint", None)
        st.session_state[P + "model"] = {"checkpoint": result, "label": record["label"], "source": "trained"}
        st.session_state.pop(P + "exported", None)


def absorb_finished() -> None:
    job = newly_finished(P + "job")
    if job is not None:
        finish_run(job)


def running_job():
    job = shared_runner().get(st.session_state.get(P + "job"))
    return job if job is not None and not job.done else None


def live_view(baselines: dict[str, float]) -> None:
    """Metrics, Stop, the loss chart and the latest samples; reruns every second while a run trains."""
    job = shared_runner().get(st.session_state.get(P + "job"))

    @st.fragment(run_every=1.0 if job is not None and not job.done else None)
    def panel():
        current = shared_runner().get(st.session_state.get(P + "job"))
        record = next((r for r in runs() if current is not None and r["job"] == current.id), None)
        if current is not None and newly_finished(P + "job") is not None:
            finish_run(current)
            st.rerun(scope="app")
        if current is not None and not current.done and record is not None:
            steps, evals, samples = collect(current)
            record.update(
                steps=[e for e in record["prior"] if e["kind"] == "step"] + steps,
                evals=[e for e in record["prior"] if e["kind"] == "eval"] + evals,
                samples=samples,
            )
            total = record["settings"]["max_iters"]
            last = steps[-1] if steps else None
            st.progress(
                current.progress or 0.0,
                text=t("scratch_gpt.train.progress", step=last["step"] if last else 0, total=total),
            )
            m1, m2, m3 = st.columns(3)
            m1.metric(t("scratch_gpt.metric.loss"), f"{last['loss']:.3f}" if last else "–")
            m2.metric(t("scratch_gpt.metric.val"), f"{evals[-1]['val_loss']:.3f}" if evals else "–")
            m3.metric(
                t("scratch_gpt.metric.tokens_s"),
                f"{np.median([s['tokens_per_s'] for s in steps[-20:]]):,.0f}" if steps else "–",
            )
            if st.button(t("scratch_gpt.train.stop"), key=P + "stop", icon=":material/stop:"):
                current.stop()
                st.caption(t("scratch_gpt.train.stopping"))
        elif record is not None:
            text = (
                t("scratch_gpt.train.failed", error=record.get("error"))
                if record["status"] == FAILED
                else t(
                    "scratch_gpt.train.end",
                    label=record["label"],
                    steps=record["steps"][-1]["step"] if record["steps"] else 0,
                    val=f"{record['evals'][-1]['val_loss']:.3f}" if record["evals"] else "–",
                    s=f"{record['seconds']:.0f}",
                )
            )
            (st.error if record["status"] == FAILED else st.warning if record["status"] == STOPPED else st.success)(
                text
            )
        log = st.toggle(t("scratch_gpt.chart.log"), value=True, key=P + "log_scale", persist_state="session")
        past = [r for r in runs() if r is not record and r["evals"]]
        st.plotly_chart(loss_figure(record, past, baselines, log), key=P + "loss_chart")
        samples = record["samples"] if record else []
        if samples:
            st.markdown(t("scratch_gpt.train.sample", step=samples[-1]["step"]))
            st.code(samples[-1]["text"], language=None)

    panel()


def baselines(prepared: Prepared) -> dict[str, float]:
    return {
        t("scratch_gpt.chart.uniform"): math.log(prepared.tokenizer.vocab_size),
        t("scratch_gpt.chart.unigram"): prepared.unigram_loss(),
    }
