"""The LoRA page's training view: start a run, follow it live (a polling fragment), and the run history."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backends.core.jobs import FAILED, STOPPED, shared_runner
from backends.lora import train as T
from backends.lora.config import SettingsError
from backends.lora.data import DataError
from components.i18n import t
from components.job_status import newly_finished
from components.lora.charts import history_figure, loss_figure

P = "lora."


def runs() -> list[dict]:
    return st.session_state.setdefault(P + "runs", [])


def start_run(loaded, name: str, examples, settings) -> None:
    """Everything is checked and tokenized here, so a bad input never starts a half-run."""
    st.session_state[P + "start_error"] = None
    try:
        prepared = T.prepare(loaded.tokenizer, examples, settings, loaded.model)
    except (DataError, SettingsError) as exc:
        st.session_state[P + "start_error"] = str(exc)
        return
    job = shared_runner().submit("lora", T.train_job, loaded.model, loaded.tokenizer, prepared, name)
    n = len(runs()) + 1
    runs().append(
        {
            "job": job.id,
            "label": f"#{n} r={settings.rank} lr={settings.learning_rate:g}",
            "model": name,
            "settings": settings,
            "train_n": len(prepared.train),
            "eval_n": len(prepared.eval),
            "total": prepared.total_steps,
            "steps": [],
            "evals": [],
            "status": "running",
            "stop_reason": "",
            "seconds": 0.0,
        }
    )
    st.session_state[P + "job"] = job.id


def collect(job) -> tuple[list, list, list, dict | None]:
    steps, evals, samples, last = [], [], [], None
    for event in job.events_since(0):
        kind = event.data.get("kind")
        if kind == "step":
            steps.append(event.data)
            last = event.data
        elif kind == "eval":
            evals.append(event.data)
        elif kind == "sample":
            samples.append(event.data)
    return steps, evals, samples, last


def finish_run(job) -> None:
    """Move the finished run into this session: curves into the history, the trained copy to the compare tab."""
    record = next((r for r in runs() if r["job"] == job.id), None)
    if record is None:
        return
    steps, evals, _, _ = collect(job)
    record.update(steps=steps, evals=evals, status=job.status, seconds=job.elapsed)
    result, job.result = job.result, None  # the shared runner keeps finished jobs; the model lives here only
    if result is None:
        record["stop_reason"] = job.error or job.status
        return
    record["stop_reason"] = result.stop_reason
    st.session_state[P + "active"] = {
        "model": result.model,
        "label": record["label"],
        "base": record["model"],
        "source": "trained",
        "settings": result.settings,
    }
    for key in ("answers", "merged", "zip", "try"):
        st.session_state.pop(P + key, None)


def absorb_finished() -> None:
    """A run that ended while another tab was open still reaches the history and the compare tab."""
    job = newly_finished(P + "job")
    if job is not None:
        finish_run(job)


def status_text(job, record) -> str:
    if job.status == FAILED:
        return t("lora.train.failed", error=job.error)
    reason = record["stop_reason"] if record else job.status
    steps = len(record["steps"]) if record else 0
    return (
        t(f"lora.train.end.{reason}", steps=steps, s=f"{job.elapsed:.0f}")
        if reason in ("done", "stopped", "early_stopping")
        else str(reason)
    )


def live_view() -> None:
    runner = shared_runner()
    job = runner.get(st.session_state.get(P + "job"))
    if job is None:
        st.info(t("lora.train.none"))
        return

    @st.fragment(run_every=1.0 if not job.done else None)
    def panel():
        current = runner.get(st.session_state.get(P + "job"))
        record = next((r for r in runs() if r["job"] == current.id), None)
        if newly_finished(P + "job") is not None:
            finish_run(current)
            st.rerun(scope="app")
        steps, evals, samples, last = collect(current)
        total = record["total"] if record else 1
        if not current.done and last is None:
            # Before the first step (copying the model, the first evaluation and samples): say what
            # is happening instead of "step 0, about … s left" and a chart of one point.
            st.progress(0.0, text=t("lora.train.preparing", s=f"{current.elapsed:.0f}"))
            if current.queued is not None:
                st.caption(t("app.queue_wait", n=current.queued[0] + 1, s=f"{current.queued[1]:.0f}"))
        elif not current.done:
            st.progress(
                current.progress or 0.0,
                text=t("lora.train.progress", step=len(steps), total=total, eta=f"{last['eta_s']:.0f}"),
            )
            m1, m2, m3, m4 = st.columns(4)
            m1.metric(t("lora.metric.loss"), f"{last['loss']:.3f}")
            m2.metric(t("lora.metric.lr"), f"{last['lr']:.2e}")
            m3.metric(t("lora.metric.tokens_s"), f"{last['tokens_per_s']:.0f}")
            m4.metric(t("lora.metric.eta"), f"{last['eta_s']:.0f} s")
        if not current.done and st.button(t("lora.train.stop"), key=P + "stop", icon=":material/stop:"):
            current.stop()
            st.caption(t("lora.train.stopping"))
        if current.done:
            message = status_text(current, record)
            (st.error if current.status == FAILED else st.warning if current.status == STOPPED else st.success)(
                message
            )
        if len(steps) >= 2:
            log = st.toggle(t("lora.train.log_scale"), key=P + "log_scale", persist_state="session")
            st.plotly_chart(loss_figure(steps, evals, log), key=P + "loss_chart")
        if evals:
            st.caption(
                t(
                    "lora.train.eval_now",
                    loss=f"{evals[-1]['eval_loss']:.3f}",
                    step=evals[-1]["step"],
                    best=f"{min(e['eval_loss'] for e in evals):.3f}",
                )
            )
        if samples:
            st.markdown(t("lora.train.samples", step=samples[-1]["step"]))
            rows = {t("lora.col.prompt"): [p for p, _ in samples[-1]["outputs"]]}
            for s in samples[-3:]:
                rows[t("lora.col.at_step", step=s["step"])] = [text for _, text in s["outputs"]]
            st.table(pd.DataFrame(rows).set_index(t("lora.col.prompt")))  # a table wraps whole answers

    panel()


def history_view() -> None:
    finished = [r for r in runs() if r["steps"]]
    if not runs():
        st.info(t("lora.history.none"))
        return
    table = [
        {
            t("lora.col.run"): r["label"],
            t("lora.col.model"): r["model"],
            t("lora.col.status"): r["stop_reason"] or r["status"],
            t("lora.col.steps"): len(r["steps"]),
            t("lora.col.final_loss"): round(r["steps"][-1]["loss"], 4) if r["steps"] else None,
            t("lora.col.eval_loss"): round(r["evals"][-1]["eval_loss"], 4) if r["evals"] else None,
            "rank": r["settings"].rank,
            "alpha": r["settings"].alpha,
            "lr": r["settings"].learning_rate,
            "targets": ", ".join(r["settings"].target_modules),
            "max_length": r["settings"].max_length,
            t("lora.col.seconds"): round(r["seconds"], 1),
        }
        for r in runs()
    ]
    st.dataframe(pd.DataFrame(table), hide_index=True, key=P + "history_table")
    if finished:
        log = st.toggle(t("lora.train.log_scale"), key=P + "history_log", persist_state="session")
        st.plotly_chart(history_figure(finished, log), key=P + "history_chart")
    with st.expander(t("lora.history.configs")):
        st.json({r["label"]: r["settings"].to_dict() for r in runs()}, expanded=False)


def start_disabled() -> bool:
    job = shared_runner().get(st.session_state.get(P + "job"))
    return job is not None and not job.done
