"""The classifier page's training tab: the probe and fine-tune settings, starting a run, following it live."""

from __future__ import annotations

import streamlit as st

from backends.classifier import baselines as B
from backends.classifier import finetune as F
from backends.core.jobs import DONE, FAILED, STOPPED, shared_runner
from components.classifier import charts as C
from components.i18n import t
from components.job_status import newly_finished
from components.option_labels import follow_language
from components.show_code import show_code

P = "classifier."
LORA_TARGETS = ("query", "key", "value", "dense")


def absorb_finished(runs: dict) -> None:
    """A finished run joins the comparison (its model lives in this session only); a failed one leaves its error."""
    job = newly_finished(P + "job")
    if job is None:
        return
    result, job.result = job.result, None  # the shared runner keeps finished jobs; the model lives here only
    if result is not None:
        runs[result.kind] = result
        st.session_state[P + "show_next"] = result.kind  # the results and try tabs turn to the new model
        st.session_state.pop(P + "export", None)
    elif job.status == FAILED and not stop_requested(job):  # a stopped probe ends in "InterruptedError: stopped"
        st.session_state[P + "job_error"] = job.error


def request_stop(job_id: str) -> None:
    """The Stop button's callback: runs before the page is drawn again, so "stopping" shows at once."""
    job = shared_runner().get(job_id)
    if job is not None:
        job.stop()
        st.session_state[P + "stopping"] = job_id


def stop_requested(job) -> bool:
    return job is not None and st.session_state.get(P + "stopping") == job.id


def last_step(events: list[dict]) -> int:
    """Training steps completed: the last step event's number (0 before the first)."""
    return next((e["step"] for e in reversed(events) if e.get("kind") == "step"), 0)


def final_status(job, events: list[dict], kind: str) -> None:
    """How the run ended, once it has: stopped after N steps, finished, early stopping, or the probe's end."""
    end = next((e for e in reversed(events) if e.get("kind") == "end"), None)
    steps = last_step(events)
    reason = end.get("stop_reason") if end else None
    if reason is None:  # the linear probe (no training steps), or a run stopped or failed before its end
        if job.status == DONE:
            st.success(t("classifier.ft.done_in", model=kind, s=f"{job.elapsed:.0f}"))
        elif job.status == STOPPED or stop_requested(job):
            st.warning(t("classifier.ft.stopped_empty", model=kind))
        return  # a failure's error is shown above the live view
    best = end.get("best_step", steps)
    if reason == "stopped":
        st.warning(t("classifier.ft.stopped_after", model=kind, steps=steps, best=best))
    elif reason == "early_stopping":
        st.success(t("classifier.ft.early_stopped", model=kind, steps=steps, best=best))
    elif reason == "done":
        st.success(t("classifier.ft.finished", model=kind, steps=steps, best=best))
    else:  # failed after a validation pass: its best checkpoint was still scored
        st.warning(t("classifier.ft.failed_after", model=kind, steps=steps, best=best, error=reason))


def settings_widgets(cfg: dict) -> None:
    """The fine-tune settings, written into `cfg` (this session's settings dict) as they are drawn."""
    w1, w2, w3 = st.columns(3)
    cfg["method"] = w1.radio(
        t("classifier.ft.method"),
        F.METHODS,
        index=F.METHODS.index(cfg["method"]),
        format_func=lambda m: t(f"classifier.ft.method.{m}"),
        key=follow_language(P + "w.method"),
        persist_state="session",
    )
    cfg["epochs"] = w1.number_input(
        t("classifier.ft.epochs"),
        0.1,
        100.0,
        float(cfg["epochs"]),
        step=0.5,
        key=P + "w.epochs",
        persist_state="session",
    )
    cfg["learning_rate"] = w2.number_input(
        t("classifier.ft.lr"),
        1e-7,
        1.0,
        float(cfg["learning_rate"]),
        format="%.6f",
        step=1e-5,
        key=P + "w.lr",
        help=t("classifier.ft.lr_help"),
        persist_state="session",
    )
    cfg["schedule"] = w2.selectbox(
        t("classifier.ft.schedule"),
        F.SCHEDULES,
        index=F.SCHEDULES.index(cfg["schedule"]),
        key=P + "w.schedule",
        persist_state="session",
    )
    cfg["warmup_ratio"] = w2.slider(
        t("classifier.ft.warmup"),
        0.0,
        0.5,
        float(cfg["warmup_ratio"]),
        0.05,
        key=P + "w.warmup",
        persist_state="session",
    )
    cfg["batch_size"] = w3.number_input(
        t("classifier.ft.batch"), 1, 512, int(cfg["batch_size"]), key=P + "w.batch", persist_state="session"
    )
    cfg["max_length"] = w3.number_input(
        t("classifier.ft.max_length"),
        1,
        4096,
        int(cfg["max_length"]),
        key=P + "w.max_length",
        help=t("classifier.ft.max_length_help"),
        persist_state="session",
    )
    e1, e2, e3 = st.columns(3)
    cfg["eval_every"] = e1.number_input(
        t("classifier.ft.eval_every"),
        1,
        100_000,
        int(cfg["eval_every"]),
        key=P + "w.eval_every",
        persist_state="session",
    )
    cfg["patience"] = e2.number_input(
        t("classifier.ft.patience"),
        0,
        100,
        int(cfg["patience"]),
        key=P + "w.patience",
        help=t("classifier.ft.patience_help"),
        persist_state="session",
    )
    cfg["class_weighted"] = e3.toggle(
        t("classifier.ft.weighted"),
        bool(cfg["class_weighted"]),
        key=P + "w.weighted",
        help=t("classifier.ft.weighted_help"),
        persist_state="session",
    )
    if cfg["method"] == "lora":
        l1, l2, l3 = st.columns(3)
        cfg["lora_rank"] = l1.number_input(
            t("classifier.ft.rank"), 1, 4096, int(cfg["lora_rank"]), key=P + "w.rank", persist_state="session"
        )
        cfg["lora_alpha"] = l2.number_input(
            t("classifier.ft.alpha"), 1, 8192, int(cfg["lora_alpha"]), key=P + "w.alpha", persist_state="session"
        )
        cfg["lora_targets"] = l3.multiselect(
            t("classifier.ft.targets"),
            LORA_TARGETS,
            list(cfg["lora_targets"]),
            key=P + "w.targets",
            persist_state="session",
        )
    cfg["seed"] = int(st.session_state.get(P + "seed", 0))


def start(kind: str, loaded, cfg: dict, split):
    """A callback: checks first, so bad settings never start a half-run."""
    st.session_state[P + "start_error"] = st.session_state[P + "job_error"] = None
    runner = shared_runner()
    if kind == "probe":
        job = runner.submit(
            "classifier-probe", B.probe_job, loaded.model, loaded.tokenizer, split, int(cfg["max_length"])
        )
    else:
        try:
            settings = F.FinetuneSettings.from_dict({**cfg, "lora_targets": tuple(cfg["lora_targets"])})
        except (F.SettingsError, TypeError) as exc:
            st.session_state[P + "start_error"] = str(exc)
            return
        job = runner.submit("classifier", F.finetune_job, loaded.model, loaded.tokenizer, split, settings)
    st.session_state[P + "job"] = job.id
    st.session_state[P + "job_kind"] = kind


def live_view(runs: dict, n_test: int) -> None:
    """The running job's progress and curves, polled by a fragment; a finished job is absorbed at once and
    its final status stays (stopped after N steps, finished, early stopping)."""
    runner = shared_runner()
    job = runner.get(st.session_state.get(P + "job"))
    if job is None:
        return

    @st.fragment(run_every=1.0 if not job.done else None)
    def panel():
        current = runner.get(st.session_state.get(P + "job"))
        if current.done and st.session_state.get(P + "job.taken") != current.id:
            absorb_finished(runs)
            st.rerun(scope="app")
        events = [e.data for e in current.events_since(0)]
        history = [e for e in events if e.get("kind") in ("step", "eval")]
        kind = C.model_label(st.session_state.get(P + "job_kind", "full"))
        if current.done:
            final_status(current, events, kind)
        elif stop_requested(current):  # Stop was pressed: the step in flight, then the test part, then the end
            st.progress(current.progress or 0.0, text=t("classifier.ft.stopping_progress", model=kind))
            if st.session_state.get(P + "job_kind") == "probe":
                st.info(t("classifier.probe.stopping"))
            else:
                st.info(t("classifier.ft.stopping", step=last_step(events), n=n_test))
        else:
            last = next((e for e in reversed(history) if e.get("kind") == "step"), None)
            total = next((e["total"] for e in events if e.get("kind") == "setup"), None)
            text = (
                t(
                    "classifier.ft.progress",
                    model=kind,
                    step=last["step"] if last else 0,
                    total=total or "…",
                    eta=f"{last['eta_s']:.0f}" if last else "…",
                )
                if total
                else t("classifier.ft.working", model=kind)
            )
            st.progress(current.progress or 0.0, text=text)
            st.button(
                t("classifier.ft.stop"),
                key=P + "stop",
                icon=":material/stop:",
                on_click=request_stop,
                args=(current.id,),
            )
        if history:
            st.plotly_chart(C.training_figure(history), key=P + "live_chart")

    panel()


def train_tab(loaded, cfg: dict, split, runs: dict) -> None:
    """The linear probe, the fine-tune settings and its start button, and the live view of a run."""
    job = shared_runner().get(st.session_state.get(P + "job"))
    busy = job is not None and not job.done
    st.markdown(t("classifier.probe.about"))
    st.button(
        t("classifier.probe.run"),
        key=P + "probe",
        disabled=busy or loaded is None,
        on_click=start,
        args=("probe", loaded, cfg, split),
        icon=":material/play_arrow:",
    )
    st.divider()
    st.markdown(t("classifier.ft.about"))
    settings_widgets(cfg)
    steps = (
        F.FinetuneSettings(**{**cfg, "lora_targets": tuple(cfg["lora_targets"])}).total_steps(len(split.train))
        if cfg["batch_size"] >= 1
        else 0
    )
    st.caption(t("classifier.ft.plan", steps=steps, n=len(split.train), batch=cfg["batch_size"]))
    st.button(
        t("classifier.ft.start"),
        key=P + "start",
        type="primary",
        disabled=busy or loaded is None,
        on_click=start,
        args=(cfg["method"], loaded, cfg, split),
        icon=":material/play_arrow:",
    )
    for key in ("start_error", "job_error"):
        if st.session_state.get(P + key):
            st.error(t("classifier.ft.failed", error=st.session_state[P + key]))
    live_view(runs, len(split.test))
    show_code(F.finetune)
