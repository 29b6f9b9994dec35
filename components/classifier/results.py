"""The classifier page's tabs on trained models: results on the test split, try a text, export."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from backends.classifier import export as E
from backends.classifier.explain import explain, predict_texts
from backends.classifier.metrics import report
from backends.models.registry import MINILM
from components.classifier import charts as C
from components.i18n import current_lang, t
from components.option_labels import follow_language
from components.show_code import show_code

P = "classifier."
TRY_DEFAULT = "The flight was delayed for three hours and nobody told us anything. Great job."


def results_tab(split, runs: dict, reports: dict) -> None:
    """Every model's test metrics side by side, then one model's confusion matrix, calibration and mistakes."""
    names = split.label_names
    st.markdown(t("classifier.results.compare", n=len(split.test)))
    st.dataframe(C.compare_table(reports, runs), hide_index=True, key=P + "compare", column_config=C.compare_columns())
    available = [k for k in C.MODEL_KINDS if k in runs]
    if st.session_state.get(P + "show_next") in available:
        st.session_state[P + "shown"] = st.session_state[P + "try_model"] = st.session_state.pop(P + "show_next")
    kind = st.selectbox(
        t("classifier.results.model"),
        available,
        format_func=C.model_label,
        key=follow_language(P + "shown"),
        persist_state="session",
        **newest_first(P + "shown", available),
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
    st.dataframe(wrong, hide_index=True, key=P + "wrong", column_config=C.misclassified_columns())
    if runs[kind].history and any(h.get("kind") == "step" for h in runs[kind].history):
        st.plotly_chart(C.training_figure(runs[kind].history), key=P + "history_chart")
    show_code(report)


def newest_first(key: str, options: list) -> dict:
    """The selectbox's `index` (the newest model) only while session state holds no value for it: a
    widget given both a default and a Session State value makes Streamlit warn."""
    if st.session_state.get(key) in options:
        return {}
    st.session_state.pop(key, None)  # a model of an earlier split: start from the newest again
    return {"index": len(options) - 1}


def try_tab(loaded, runs: dict, names) -> None:
    """One text through every model, and why the chosen model decided as it did."""
    if current_lang() != "en":
        st.info(t("classifier.english_only"))
    text = st.text_area(t("classifier.try.text"), TRY_DEFAULT, key=P + "try_text", persist_state="session")
    if not text.strip():
        st.info(t("classifier.try.empty"))
        return
    tokenizer = loaded.tokenizer if loaded else None
    usable = {k: run for k, run in runs.items() if k == "tfidf" or tokenizer is not None}
    # one row per class (label names are data), one column of probabilities per model
    table = {t("classifier.col.class"): C.class_labels(names)}
    for kind, run in usable.items():
        table[C.model_label(kind)] = [round(float(p), 3) for p in predict_texts(run, tokenizer, [text])[0]]
    st.dataframe(pd.DataFrame(table), hide_index=True, key=P + "try_table")
    kind = st.selectbox(
        t("classifier.try.explain"),
        list(usable),
        format_func=C.model_label,
        key=follow_language(P + "try_model"),
        persist_state="session",
        **newest_first(P + "try_model", list(usable)),
    )
    why = explain(usable[kind], tokenizer, text)
    method = "gradient" if why.method == "gradient x input" else "tfidf"
    label = C.class_label(names[why.target])
    st.markdown(t("classifier.try.why", label=label, method=t(f"classifier.method.{method}")))
    st.markdown(C.attribution_html(why.tokens, why.scores), unsafe_allow_html=True)
    st.caption(t("classifier.try.legend"))


def export_tab(loaded, split, runs: dict, reports: dict) -> None:
    """A trained model's settings as JSON, and the model itself as a zip to load with transformers."""
    names = split.label_names
    exportable = [k for k in ("probe", "full", "lora") if k in runs]
    if not exportable:
        st.info(t("classifier.export.none"))
        return
    kind = st.selectbox(
        t("classifier.export.model"),
        exportable,
        format_func=C.model_label,
        key=follow_language(P + "export_model"),
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
