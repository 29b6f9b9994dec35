"""Fine-tune a classifier: one split of real tweets, four models side by side, confusion matrices and why."""

import json

import pandas as pd
import streamlit as st

from backends.classifier import baselines as B
from backends.classifier import data as D
from backends.classifier import export as E
from backends.classifier import finetune as F
from backends.classifier.explain import explain, predict_texts
from backends.classifier.metrics import report
from backends.core.jobs import FAILED, shared_runner
from backends.models.registry import MINILM
from components import classifier as C
from components.i18n import t
from components.job_status import newly_finished
from components.model_picker import load_or_explain
from components.show_code import show_code

P = "classifier."
UPLOAD_MAX_MB = 20
DEFAULT_CAPS = {"max_train": 2000, "max_val": 300, "max_test": 1000}
LORA_TARGETS = ("query", "key", "value", "dense")
TRY_DEFAULT = "The flight was delayed for three hours and nobody told us anything. Great job."

if P + "cfg" not in st.session_state:
    st.session_state[P + "cfg"] = F.FinetuneSettings(epochs=1.0).to_dict()
cfg = st.session_state[P + "cfg"]
runs: dict = st.session_state.setdefault(P + "runs", {})


def attempt(load, *args):
    """(dataset, None), or (None, the message of the DataError that quotes the bad row or value)."""
    try:
        return load(*args), None
    except D.DataError as exc:
        return None, str(exc)


def dataset():
    """This session's labelled data, or the reason there is none; an upload is parsed once per file."""
    upload = st.session_state.get(P + "upload")
    if st.session_state.get(P + "source", "tweets") == "tweets":
        return attempt(D.load_tweets)
    if upload is None:
        return None, t("classifier.data.upload_first")
    if upload.size > UPLOAD_MAX_MB * 2**20:
        return None, t("classifier.data.too_big", mb=UPLOAD_MAX_MB, size=f"{upload.size / 2**20:.1f}")
    held = st.session_state.get(P + "parsed", (None, None, None))
    if held[0] != upload.file_id:
        held = (upload.file_id, *attempt(D.parse_upload, upload.name, upload.getvalue()))
        st.session_state[P + "parsed"] = held
    return held[1:]


def current_split(data):
    """The seeded split of this session; changing data, seed or caps starts the comparison afresh."""
    caps = {k: int(st.session_state.get(P + k, v)) for k, v in DEFAULT_CAPS.items()}
    seed = int(st.session_state.get(P + "seed", 0))
    upload = st.session_state.get(P + "upload") if st.session_state.get(P + "source", "tweets") != "tweets" else None
    signature = (upload.file_id if upload else "tweets", seed, tuple(caps.values()))
    held = st.session_state.get(P + "split")
    if held is None or held[0] != signature:
        held = (signature, D.split(data, 0.1, 0.1, seed=seed, **caps))
        st.session_state[P + "split"] = held
        runs.clear()
        for key in ("export", "job"):
            st.session_state.pop(P + key, None)
    return held[1]


st.title(t("page.classifier.title"))
st.markdown(t("classifier.intro"))

source = st.radio(
    t("classifier.data.source"),
    ["tweets", "upload"],
    horizontal=True,
    key=P + "source",
    format_func=lambda s: t(f"classifier.data.source.{s}"),
    persist_state="session",
)
if source == "tweets":
    st.caption(t("classifier.data.tweets_note"))
else:
    st.file_uploader(
        t("classifier.data.upload"),
        type=["csv", "jsonl", "json", "txt"],
        key=P + "upload",
        help=t("classifier.data.upload_help", mb=UPLOAD_MAX_MB),
    )
data, problem = dataset()
if data is None:
    (st.error if source == "upload" and st.session_state.get(P + "upload") is not None else st.info)(problem)
    st.stop()
if data.note:
    st.warning(data.note)
for name, value in {**DEFAULT_CAPS, "seed": 0}.items():  # widgets start from the state (tests and links set it)
    st.session_state.setdefault(P + name, value)
c1, c2, c3, c4 = st.columns(4)
c1.number_input(
    t("classifier.data.max_train"),
    10,
    100_000,
    step=500,
    key=P + "max_train",
    help=t("classifier.data.caps_help"),
    persist_state="session",
)
c2.number_input(t("classifier.data.max_val"), 2, 20_000, step=100, key=P + "max_val", persist_state="session")
c3.number_input(t("classifier.data.max_test"), 2, 20_000, step=100, key=P + "max_test", persist_state="session")
c4.number_input(t("classifier.data.seed"), 0, 2**31 - 1, key=P + "seed", persist_state="session")
try:
    split = current_split(data)
except D.DataError as exc:
    st.error(str(exc))
    st.stop()
names = split.label_names
st.success(
    t(
        "classifier.data.split",
        n=f"{len(data):,}",
        train=f"{len(split.train):,}",
        of=f"{split.total_train:,}",
        val=len(split.val),
        test=len(split.test),
        labels=", ".join(f"`{n}`" for n in names),
    )
)
with st.expander(t("classifier.data.view"), expanded=False):
    d1, d2 = st.columns(2)
    d1.plotly_chart(C.balance_figure(data.counts()), key=P + "balance")
    d2.plotly_chart(C.length_figure(*D.length_histogram(data)), key=P + "lengths")
    st.dataframe(
        pd.DataFrame(
            {
                t("classifier.col.text"): split.train.texts[:50],
                t("classifier.col.label"): [names[y] for y in split.train.labels[:50]],
            }
        ),
        hide_index=True,
        key=P + "preview",
    )

if "tfidf" not in runs:  # seconds on the default split: every visit starts with a result to look at
    with st.spinner(t("classifier.tfidf.running")):
        runs["tfidf"] = B.tfidf_baseline(split)


def absorb_finished():
    job = newly_finished(P + "job")
    if job is None:
        return
    result, job.result = job.result, None  # the shared runner keeps finished jobs; the model lives here only
    if result is not None:
        runs[result.kind] = result
        st.session_state[P + "show_next"] = result.kind  # the results and try tabs turn to the new model
        st.session_state.pop(P + "export", None)
    elif job.status == FAILED:
        st.session_state[P + "job_error"] = job.error


absorb_finished()
reports = {kind: report(split.test.labels, run.test_probs, names) for kind, run in runs.items()}
tabs = st.tabs(
    [t("classifier.tab.results"), t("classifier.tab.train"), t("classifier.tab.try"), t("classifier.tab.export")]
)


def results_tab():
    st.markdown(t("classifier.results.compare", n=len(split.test)))
    st.dataframe(C.compare_table(reports, runs), hide_index=True, key=P + "compare")
    available = [k for k in C.MODEL_KINDS if k in runs]
    if st.session_state.get(P + "show_next") in available:
        st.session_state[P + "shown"] = st.session_state[P + "try_model"] = st.session_state.pop(P + "show_next")
    kind = st.selectbox(
        t("classifier.results.model"),
        available,
        format_func=C.model_label,
        key=P + "shown",
        index=len(available) - 1,
        persist_state="session",
    )
    r, label = reports[kind], C.model_label(kind)
    m1, m2, m3 = st.columns(3)
    m1.metric(t("classifier.col.accuracy"), f"{r.accuracy:.3f}")
    m2.metric(t("classifier.col.macro_f1"), f"{r.macro_f1:.3f}")
    m3.metric(t("classifier.results.ece"), f"{r.ece:.3f}", help=t("classifier.results.ece_help"))
    left, right = st.columns(2)
    with left:
        normalised = st.toggle(t("classifier.cm.normalised"), key=P + "normalised", persist_state="session")
        matrix = r.confusion_normalised if normalised else r.confusion
        st.plotly_chart(C.confusion_figure(matrix, names, normalised, label), key=P + "confusion")
    with right:
        st.plotly_chart(C.calibration_figure(r.calibration, label), key=P + "calibration")
    st.markdown(t("classifier.results.per_class"))
    st.dataframe(C.per_class_table(r), hide_index=True, key=P + "per_class")
    st.markdown(t("classifier.results.wrong"))
    wrong = C.misclassified_table(split.test.texts, split.test.labels, runs[kind].test_probs, names)
    st.caption(t("classifier.results.wrong_note", n=int(r.confusion.sum() - r.confusion.trace()), shown=len(wrong)))
    st.dataframe(wrong, hide_index=True, key=P + "wrong")
    if runs[kind].history and any(h.get("kind") == "step" for h in runs[kind].history):
        st.plotly_chart(C.training_figure(runs[kind].history), key=P + "history_chart")
    show_code(report)


def settings_widgets():
    w1, w2, w3 = st.columns(3)
    cfg["method"] = w1.radio(
        t("classifier.ft.method"),
        F.METHODS,
        index=F.METHODS.index(cfg["method"]),
        format_func=lambda m: t(f"classifier.ft.method.{m}"),
        key=P + "w.method",
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


def start(kind: str, loaded):
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


def live_view():
    runner = shared_runner()
    job = runner.get(st.session_state.get(P + "job"))
    if job is None:
        return

    @st.fragment(run_every=1.0 if not job.done else None)
    def panel():
        current = runner.get(st.session_state.get(P + "job"))
        if current.done and st.session_state.get(P + "job.taken") != current.id:
            absorb_finished()
            st.rerun(scope="app")
        events = [e.data for e in current.events_since(0)]
        history = [e for e in events if e.get("kind") in ("step", "eval")]
        kind = C.model_label(st.session_state.get(P + "job_kind", "full"))
        if not current.done:
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
            if st.button(t("classifier.ft.stop"), key=P + "stop", icon=":material/stop:"):
                current.stop()
                st.caption(t("classifier.ft.stopping"))
        if history:
            st.plotly_chart(C.training_figure(history), key=P + "live_chart")

    panel()


def train_tab(loaded):
    job = shared_runner().get(st.session_state.get(P + "job"))
    busy = job is not None and not job.done
    st.markdown(t("classifier.probe.about"))
    st.button(
        t("classifier.probe.run"),
        key=P + "probe",
        disabled=busy or loaded is None,
        on_click=start,
        args=("probe", loaded),
        icon=":material/play_arrow:",
    )
    st.divider()
    st.markdown(t("classifier.ft.about"))
    settings_widgets()
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
        args=(cfg["method"], loaded),
        icon=":material/play_arrow:",
    )
    for key in ("start_error", "job_error"):
        if st.session_state.get(P + key):
            st.error(t("classifier.ft.failed", error=st.session_state[P + key]))
    live_view()
    show_code(F.finetune)


def try_tab(loaded):
    text = st.text_area(t("classifier.try.text"), TRY_DEFAULT, key=P + "try_text", persist_state="session")
    if not text.strip():
        st.info(t("classifier.try.empty"))
        return
    tokenizer = loaded.tokenizer if loaded else None
    usable = {k: run for k, run in runs.items() if k == "tfidf" or tokenizer is not None}
    # one row per class (label names are data), one column of probabilities per model
    table = {t("classifier.col.class"): list(names)}
    for kind, run in usable.items():
        table[C.model_label(kind)] = [round(float(p), 3) for p in predict_texts(run, tokenizer, [text])[0]]
    st.dataframe(pd.DataFrame(table), hide_index=True, key=P + "try_table")
    kind = st.selectbox(
        t("classifier.try.explain"),
        list(usable),
        format_func=C.model_label,
        key=P + "try_model",
        index=len(usable) - 1,
        persist_state="session",
    )
    why = explain(usable[kind], tokenizer, text)
    method = "gradient" if why.method == "gradient x input" else "tfidf"
    st.markdown(t("classifier.try.why", label=f"`{names[why.target]}`", method=t(f"classifier.method.{method}")))
    st.markdown(C.attribution_html(why.tokens, why.scores), unsafe_allow_html=True)
    st.caption(t("classifier.try.legend"))


def export_tab(loaded):
    exportable = [k for k in ("probe", "full", "lora") if k in runs]
    if not exportable:
        st.info(t("classifier.export.none"))
        return
    kind = st.selectbox(
        t("classifier.export.model"),
        exportable,
        format_func=C.model_label,
        key=P + "export_model",
        persist_state="session",
    )
    run = runs[kind]
    r = reports[kind]
    metrics = {"accuracy": r.accuracy, "macro_f1": r.macro_f1, "ece": r.ece, "test_examples": len(split.test)}
    settings = {
        "kind": kind,
        "labels": list(names),
        "settings": run.settings,
        "test_metrics": metrics,
        "split": {"seed": split.seed, "train": len(split.train), "val": len(split.val), "test": len(split.test)},
    }
    st.download_button(
        t("classifier.export.settings"),
        json.dumps(settings, indent=2, default=str),
        file_name=f"classifier-{kind}-settings.json",
        mime="application/json",
        key=P + "dl_settings",
    )
    if st.button(t("classifier.export.prepare"), key=P + "prepare"):
        with st.spinner(t("classifier.export.preparing")):
            st.session_state[P + "export"] = (kind, E.export_zip(run, loaded.tokenizer, MINILM.hub_id, metrics))
    held = st.session_state.get(P + "export")
    if held and held[0] == kind:
        st.download_button(
            t("classifier.export.download", mb=f"{len(held[1]) / 2**20:.1f}"),
            held[1],
            file_name=f"classifier-{kind}.zip",
            mime="application/zip",
            key=P + "dl_zip",
        )
    show_code(E.export_zip)


loaded = load_or_explain(MINILM.key)
with tabs[0]:
    results_tab()
with tabs[1]:
    train_tab(loaded)
with tabs[2]:
    try_tab(loaded)
with tabs[3]:
    export_tab(loaded)
