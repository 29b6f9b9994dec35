"""Fine-tune a classifier: one split of real tweets, four models side by side, confusion matrices and why."""

import pandas as pd
import streamlit as st

from backends.classifier import baselines as B
from backends.classifier import data as D
from backends.classifier import finetune as F
from backends.classifier.metrics import report
from backends.models.registry import MINILM
from components.backend_text import said
from components.builtin_text import file_uploader
from components.classifier.charts import balance_figure, class_label, class_labels, length_figure
from components.classifier.results import export_tab, results_tab, try_tab
from components.classifier.train import absorb_finished, train_tab
from components.i18n import t
from components.model_picker import load_or_explain
from components.option_labels import follow_language

P = "classifier."
UPLOAD_MAX_MB = 20
DEFAULT_CAPS = {"max_train": 2000, "max_val": 300, "max_test": 1000}

if P + "cfg" not in st.session_state:
    st.session_state[P + "cfg"] = F.FinetuneSettings(epochs=1.0).to_dict()
cfg = st.session_state[P + "cfg"]
runs: dict = st.session_state.setdefault(P + "runs", {})


def attempt(load, *args):
    """(dataset, None), or (None, the DataError that quotes the bad row or value)."""
    try:
        return load(*args), None
    except D.DataError as exc:
        return None, exc


def dataset():
    """This session's labelled data, or the reason there is none; an upload is parsed once per file."""
    upload = st.session_state.get(P + "upload")
    if st.session_state.get(P + "source", "tweets") == "tweets":
        return worded(*attempt(D.load_tweets))
    if upload is None:
        return None, t("classifier.data.upload_first")
    if upload.size > UPLOAD_MAX_MB * 2**20:
        return None, t("classifier.data.too_big", mb=UPLOAD_MAX_MB, size=f"{upload.size / 2**20:.1f}")
    held = st.session_state.get(P + "parsed", (None, None, None))
    if held[0] != upload.file_id:
        held = (upload.file_id, *attempt(D.parse_upload, upload.name, upload.getvalue()))
        st.session_state[P + "parsed"] = held
    return worded(*held[1:])


def worded(data, problem):
    """A DataError said in the language of this run (a held upload's error follows a language switch)."""
    return data, said(problem, "classifier.data.error.") if isinstance(problem, D.DataError) else problem


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
    key=follow_language(P + "source"),
    format_func=lambda s: t(f"classifier.data.source.{s}"),
    persist_state="session",
)
if source == "tweets":
    st.caption(t("classifier.data.tweets_note"))
else:
    file_uploader(
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
    st.error(said(exc, "classifier.data.error."))
    st.stop()
names = split.label_names
clean = split.hygiene
st.success(
    t(
        "classifier.data.split",
        n=f"{clean.raw:,}",
        dups=f"{clean.duplicates:,}",
        conflicts=f"{clean.conflicting_texts:,}",
        conflict_rows=f"{clean.conflicting_rows:,}",
        kept=f"{clean.kept:,}",
        train=f"{len(split.train):,}",
        of=f"{split.total_train:,}",
        val=len(split.val),
        test=len(split.test),
        labels=t("classifier.list_sep").join(f"`{n}`" for n in class_labels(names)),
    )
)
with st.expander(t("classifier.data.view"), expanded=False):
    st.caption(t("classifier.data.hygiene_rule"))
    d1, d2 = st.columns(2)
    d1.plotly_chart(balance_figure(split.data.counts()), key=P + "balance")
    d2.plotly_chart(length_figure(*D.length_histogram(split.data)), key=P + "lengths")
    if clean.conflicts:
        st.markdown(t("classifier.data.conflicts", shown=len(clean.conflicts), total=clean.conflicting_texts))
        st.dataframe(
            pd.DataFrame(
                {
                    t("classifier.col.text"): [text for text, _ in clean.conflicts],
                    t("classifier.col.copies"): [
                        t("classifier.list_sep").join(
                            t("classifier.data.copies_item", label=name, n=n)
                            for name, n in zip(class_labels(names), copies)
                        )
                        for _, copies in clean.conflicts
                    ],
                }
            ),
            hide_index=True,
            key=P + "conflicts",
        )
    st.dataframe(
        pd.DataFrame(
            {
                t("classifier.col.text"): split.train.texts[:50],
                t("classifier.col.label"): [class_label(names[y]) for y in split.train.labels[:50]],
            }
        ),
        hide_index=True,
        key=P + "preview",
    )

if "tfidf" not in runs:  # seconds on the default split: every visit starts with a result to look at
    with st.spinner(t("classifier.tfidf.running")):
        runs["tfidf"] = B.tfidf_baseline(split)

absorb_finished(runs)
reports = {kind: report(split.test.labels, run.test_probs, names) for kind, run in runs.items()}
tabs = st.tabs(
    [t("classifier.tab.results"), t("classifier.tab.train"), t("classifier.tab.try"), t("classifier.tab.export")]
)
loaded = load_or_explain(MINILM.key)
with tabs[0]:
    results_tab(split, runs, reports)
with tabs[1]:
    train_tab(loaded, cfg, split, runs)
with tabs[2]:
    try_tab(loaded, runs, names)
with tabs[3]:
    export_tab(loaded, split, runs, reports)
