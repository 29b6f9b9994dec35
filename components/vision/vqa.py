"""Train your own tiny VQA model (easy-vqa) in the background, watch it learn, then ask it questions."""

from __future__ import annotations

import streamlit as st
from PIL import Image

from backends.core.jobs import FAILED, STOPPED, shared_runner
from backends.vision.conse import embed_texts
from backends.vision.tiny_vqa import VqaSettings, ask, load_easy_vqa, train_job
from components.i18n import t
from components.job_status import newly_finished
from components.vision.charts import training_curves
from components.vision.inputs import conse_parts

P = "vision.vqa."


def settings_form() -> VqaSettings:
    c1, c2, c3 = st.columns(3)
    epochs = c1.number_input(
        t("vision.vqa.epochs"), 1, 100, VqaSettings.epochs, key=P + "epochs", persist_state="session"
    )
    hidden = c2.select_slider(
        t("vision.vqa.hidden"), [32, 64, 128, 256, 512], VqaSettings.hidden, key=P + "hidden", persist_state="session"
    )
    lr = c3.select_slider(
        t("vision.vqa.lr"),
        [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
        VqaSettings.lr,
        key=P + "lr",
        format_func=lambda v: f"{v:g}",
        persist_state="session",
    )
    return VqaSettings(epochs=int(epochs), hidden=int(hidden), lr=float(lr))


def _events(job) -> tuple[list[dict], list[dict], dict | None, dict]:
    """The job's steps, epochs, latest feature progress, and its "start" / "end" reports by kind."""
    steps, epochs, features, marks = [], [], None, {}
    for event in job.events_since(0):
        kind = event.data.get("kind")
        if kind == "step":
            steps.append(event.data)
        elif kind == "epoch":
            epochs.append(event.data)
        elif kind == "features":
            features = event.data
        elif kind in ("start", "end"):
            marks[kind] = event.data
    return steps, epochs, features, marks


def _adopt(job) -> None:
    """A finished run's model moves into this session (the shared runner keeps finished jobs)."""
    if job.status in ("done", STOPPED) and job.result is not None:
        st.session_state[P + "trained"] = job.result
        job.result = None


def train_panel() -> None:
    runner = shared_runner()
    job = runner.get(st.session_state.get(P + "job"))
    settings = settings_form()
    running = job is not None and not job.done
    if st.button(
        t("vision.vqa.train"), key=P + "start", type="primary", disabled=running, icon=":material/model_training:"
    ):
        parts = conse_parts()
        if parts is not None:
            job = runner.submit("vision.tiny_vqa", train_job, parts[0], parts[1], settings)
            st.session_state[P + "job"] = job.id
            running = True
    if job is None:
        st.info(t("vision.vqa.none"))
        return

    @st.fragment(run_every=1.0 if running else None)
    def live():
        current = runner.get(st.session_state.get(P + "job"))
        if current is None:
            return
        if newly_finished(P + "job") is not None:
            _adopt(current)
            st.rerun(scope="app")
        steps, epochs, features, marks = _events(current)
        if not current.done:
            if not steps and features is not None and features.get("stage") != "start":
                st.progress(
                    features["done"] / max(1, features["total"]),
                    text=t(
                        "vision.vqa.features", stage=features["stage"], done=features["done"], total=features["total"]
                    ),
                )
            else:
                st.progress(current.progress or 0.0, text=t("vision.vqa.training", s=f"{current.elapsed:.0f}"))
            if st.button(t("vision.vqa.stop"), key=P + "stop", icon=":material/stop:"):
                current.stop()
        elif current.status == FAILED:
            st.error(t("vision.vqa.failed", error=current.error))
        elif current.status == STOPPED:  # the model so far (if any): how far it got, never "Trained"
            seconds, end = f"{current.elapsed:.0f}", marks.get("end")  # "end" comes after "start"
            if end is None:
                st.warning(t("vision.vqa.stopped_early", s=seconds))
            else:
                total, acc = marks["start"]["settings"]["epochs"], f"{end['test_acc']:.1%}"
                st.warning(t("vision.vqa.stopped", done=len(epochs), total=total, acc=acc, s=seconds))
        else:
            trained = st.session_state.get(P + "trained")
            acc = trained.test_accuracy if trained else (epochs[-1]["test_acc"] if epochs else 0.0)
            st.success(t("vision.vqa.done", acc=f"{acc:.1%}", s=f"{current.elapsed:.0f}"))
        if steps or epochs:
            st.plotly_chart(training_curves(steps, epochs, t("vision.vqa.chart")), key=P + "chart")

    live()


def ask_panel() -> None:
    trained = st.session_state.get(P + "trained")
    if trained is None:
        st.info(t("vision.vqa.train_first"))
        return
    data = load_easy_vqa()
    test = data.test
    index = int(
        st.number_input(
            t("vision.vqa.image_id"), 0, len(test.paths) - 1, 0, key=P + "image_id", persist_state="session"
        )
    )
    left, right = st.columns([1, 2])
    left.image(
        Image.open(test.paths[index]).convert("RGB").resize((192, 192), Image.NEAREST),
        caption=t("vision.vqa.image_caption", i=index),
    )
    known = {q: data.answers[a] for q, a, i in zip(test.questions, test.answers, test.image_ids) if i == index}
    with right:
        question = st.text_input(
            t("vision.vqa.question"),
            value=next(iter(known), "what shape is in the image?"),
            key=P + "question",
            persist_state="session",
        ).strip()
        if known:
            st.caption(t("vision.vqa.known", questions=" · ".join(known)))
        if not question:
            st.warning(t("vision.vqa.empty_question"))
            return
        parts = conse_parts()
        if parts is None:
            return
        vector = embed_texts(parts[1].model, [question])[0]
        answers = ask(trained, trained.features.test_images[index], vector)
        st.markdown(t("vision.vqa.answer", answer=answers[0][0], p=f"{answers[0][1]:.0%}"))
        st.caption(" · ".join(f"{a} {p:.0%}" for a, p in answers[1:]))
        if question in known:
            ok = known[question] == answers[0][0]
            (st.success if ok else st.error)(t("vision.vqa.truth", answer=known[question]))
        else:
            st.caption(t("vision.vqa.unseen"))
