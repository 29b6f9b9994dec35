"""The classifier page on the real tweets and the offline MiniLM: arrival, a short fine-tune, bad input."""

import json
import re
import time

import numpy as np
import pytest
from sklearn import metrics as skm

from backends.core.jobs import shared_runner
from components.i18n import strings
from components.page_registry import PAGES

from .plotly_helpers import figure_titled, values

CLASSIFIER = next(p for p in PAGES if p.key == "classifier")
EN = strings("en")
TFIDF = EN["classifier.model.tfidf"]

# What a browser must see once the page has run (tests/e2e/test_browser.py): the TF-IDF confusion matrix.
BROWSER_MUST_SHOW = '[data-testid="stPlotlyChart"] text.gtitle:has-text("Confusion matrix")'


def table(at, *columns):
    """The first table showing these columns (AppTest does not expose a dataframe's key)."""
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert found, f"no table with columns {columns}"
    return found[0]


def check_page(at):
    """On arrival: the default split of the tweets (duplicates and conflicting labels removed first, the
    counts computed with pandas in tests/backends/test_classifier_data.py) and the TF-IDF baseline's
    results on its 1,000 test tweets."""
    summary = [s.value for s in at.success if "labelled examples" in s.value]
    assert len(summary) == 1 and "38,158 labelled examples" in summary[0] and "2,000 training" in summary[0]
    assert "381 duplicate copies were removed" in summary[0], summary
    assert "49 texts with conflicting labels were dropped (623 rows): 37,154 distinct texts" in summary[0]
    conflicts = table(at, EN["classifier.col.text"], EN["classifier.col.copies"])
    assert (
        len(conflicts) == 5
        and conflicts.iloc[0][EN["classifier.col.copies"]] == "negative: 71, neutral: 232, positive: 0"
    )
    balance = figure_titled(at, EN["classifier.data.balance"])
    assert list(values(balance.data[0].y)) == [15_952, 14_412, 6_790], "the balance of the texts that remain"
    compare = table(at, "Model", "Macro-F1", "ECE")
    assert list(compare["Model"]) == [TFIDF]
    confusion = figure_titled(at, f"Confusion matrix · {TFIDF}")
    matrix = values(confusion.data[0].z)
    assert matrix.shape == (3, 3) and matrix.sum() == 1000
    check_metrics_equal_scikit_learn(at, "tfidf")


def check_metrics_equal_scikit_learn(at, kind):
    """The numbers the page shows are those scikit-learn computes from the same test predictions."""
    split = at.session_state["classifier.split"][1]
    run = at.session_state["classifier.runs"][kind]
    y, pred = np.array(split.test.labels), run.test_probs.argmax(1)
    shown_table = table(at, "Class", "Precision", "Recall")
    p, r, f1, support = skm.precision_recall_fscore_support(y, pred, labels=range(3), zero_division=0)
    assert list(shown_table["Precision"]) == pytest.approx(p.round(4).tolist())
    assert list(shown_table["Recall"]) == pytest.approx(r.round(4).tolist())
    assert list(shown_table["F1"]) == pytest.approx(f1.round(4).tolist())
    assert list(shown_table["Support"]) == support.tolist()
    shown = {m.label: m.value for m in at.metric}
    assert shown["Macro-F1"] == f"{skm.f1_score(y, pred, average='macro'):.3f}"
    assert shown["Accuracy"] == f"{skm.accuracy_score(y, pred):.3f}"
    matrix = values(figure_titled(at, f"Confusion matrix · {EN['classifier.model.' + kind]}").data[0].z)
    assert (matrix == skm.confusion_matrix(y, pred, labels=range(3))).all()


SMALL = {"classifier.max_train": 160, "classifier.max_val": 48, "classifier.max_test": 48}


def test_a_short_fine_tune_reaches_the_results_the_try_box_and_the_export(open_page):
    at = open_page(CLASSIFIER, **SMALL)
    assert any("160 training" in s.value for s in at.success)
    cfg = at.session_state["classifier.cfg"]
    cfg.update(epochs=1.0, batch_size=16, max_length=32, eval_every=5, learning_rate=2e-4)
    at.run()
    at.button(key="classifier.start").click().run()
    job = shared_runner().get(at.session_state["classifier.job"])
    assert job is not None and not job.done, "training runs off the UI thread"
    try:
        assert at.button(key="classifier.start").disabled, "one run at a time per session"
        deadline = time.time() + 300
        while not job.done and time.time() < deadline:
            time.sleep(2)
            at.run()
            assert not at.exception
        assert job.status == "done", job.error
        at.run()
    finally:
        job.stop()
        job.wait(60)
    compare = table(at, "Model", "Macro-F1", "ECE")
    assert list(compare["Model"]) == [TFIDF, EN["classifier.model.full"]]
    assert at.selectbox(key="classifier.shown").value == "full"
    check_metrics_equal_scikit_learn(at, "full")
    chart = figure_titled(at, EN["classifier.chart.title"])
    assert list(values(chart.data[0].x)) == list(range(1, 11))
    # the try box: every model's probabilities, and gradient x input tokens of the fine-tuned one
    probs = table(at, "Class", TFIDF, EN["classifier.model.full"])
    assert list(probs["Class"]) == ["negative", "neutral", "positive"]
    assert np.allclose(probs[[TFIDF, EN["classifier.model.full"]]].sum(0), 1, atol=0.01)
    assert any("gradient x input" in m.value for m in at.markdown)
    assert any("delayed</span>" in m.value for m in at.markdown)
    at.button(key="classifier.prepare").click().run()
    assert any(d.proto.label.startswith("Download the classifier") for d in at.get("download_button"))


@pytest.mark.parametrize(
    "name, body, message",
    [
        ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks like a binary file"),
        ("one.csv", b"text,label\ngood,pos\nfine,pos\n", "only one label (pos, 2 examples)"),
        ("cols.csv", b"review,stars\nnice,5\nbad,1\n", "lacks a label column (found: review, stars)"),
    ],
)
def test_bad_uploads_are_explained_and_nothing_runs(open_page, name, body, message):
    at = open_page(CLASSIFIER)
    at.radio(key="classifier.source").set_value("upload").run()
    assert any("Upload a CSV or JSONL" in i.value for i in at.info)
    at.file_uploader(key="classifier.upload").upload(name, body, "text/csv").run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert "classifier.job" not in at.session_state and not at.dataframe, "nothing runs on bad data"
    assert list(at.session_state["classifier.runs"]) == ["tfidf"], "the tweets' results are not lost"


def test_bad_settings_are_named_and_start_nothing(open_page):
    at = open_page(CLASSIFIER, **SMALL)
    at.number_input(key="classifier.w.max_length").set_value(1000).run()
    at.button(key="classifier.start").click().run()
    assert any("max_length = 1000 is not allowed" in e.value for e in at.error)
    assert "classifier.job" not in at.session_state


def wait_for(at, job, condition, seconds=300):
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(1)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert condition()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_stop_says_stopping_at_once_then_how_the_run_ended(open_page, monkeypatch, lang):
    """Stop showed nothing for 30-40 s ("about 164 s left" stayed) and the Train tab no final status after;
    the run that joins the results then made Streamlit warn that `classifier.shown` had both a default and
    a Session State value."""
    import types

    from streamlit.elements.lib import policies

    warned = []
    monkeypatch.setattr(policies, "runtime", types.SimpleNamespace(exists=lambda: True))  # as under a server
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    monkeypatch.setattr(policies, "_LOGGER", types.SimpleNamespace(warning=lambda msg, *a, **k: warned.append(a)))
    words = strings(lang)
    # 600 test tweets: scoring them after Stop takes seconds, so the job is still running when the click is drawn
    at = open_page(CLASSIFIER, **{**SMALL, "classifier.max_test": 600, "app.lang": lang})
    at.session_state["classifier.cfg"].update(epochs=3.0, batch_size=16, max_length=32, eval_every=1000)
    at.run()
    at.button(key="classifier.start").click().run()
    job = shared_runner().get(at.session_state["classifier.job"])
    try:
        wait_for(at, job, lambda: any(e.data.get("kind") == "step" for e in job.events_since(0)))
        at.button(key="classifier.stop").click().run()
        assert not job.done, "scoring 600 test tweets takes longer than drawing the page"
        stopping = words["classifier.ft.stopping"].split("{")[0]  # the run that handled the click says so
        assert any(i.value.startswith(stopping) for i in at.info), [i.value for i in at.info]
        progress = [p.proto.text for p in at.get("progress")]
        assert progress == [words["classifier.ft.stopping_progress"].format(model=words["classifier.model.full"])]
        assert at.button(key="classifier.start").disabled, "still one run at a time"
        wait_for(at, job, lambda: job.done)
        at.run()
    finally:
        job.stop()
        job.wait(60)
    run = at.session_state["classifier.runs"]["full"]
    steps, best = run.settings["steps_done"], run.settings["best_step"]
    assert 1 <= steps < 30 and run.stop_reason == "stopped"
    ended = words["classifier.ft.stopped_after"].format(steps=steps, model=words["classifier.model.full"], best=best)
    assert [w.value for w in at.warning if w.value == ended] == [ended], [w.value for w in at.warning]
    assert ended.startswith("Stopped after" if lang == "en" else "已在")
    assert at.selectbox(key="classifier.shown").value == "full", "the results turn to the new run"
    assert [a for a in warned if "classifier.shown" in a or "classifier.try_model" in a] == []
    compare = table(at, words["classifier.col.model"], words["classifier.col.stop"])
    assert list(compare[words["classifier.col.stop"]])[-1] == words["classifier.stop.stopped"]
    stop = words["classifier.col.stop"]
    columns = json.loads(next(d.proto.columns for d in at.dataframe if stop in d.value.columns))
    assert columns[stop]["width"] == "large", "the Ended cell was cut off"


def test_the_tweets_classes_are_named_in_chinese(open_page):
    zh = strings("zh")
    names = ["负面", "中性", "正面"]
    at = open_page(CLASSIFIER, **SMALL, **{"app.lang": "zh"})
    assert not at.exception, [e.value for e in at.exception]
    confusion = figure_titled(at, zh["classifier.cm.title"].format(model=zh["classifier.model.tfidf"]))
    assert list(confusion.data[0].x) == names and list(confusion.data[0].y) == names
    assert list(figure_titled(at, zh["classifier.data.balance"]).data[0].x) == names
    cls = zh["classifier.col.class"]
    assert list(table(at, cls, zh["classifier.col.precision"])[cls]) == names, "the classification report"
    wrong = table(at, zh["classifier.col.true"], zh["classifier.col.predicted"])
    assert set(wrong[zh["classifier.col.true"]]) | set(wrong[zh["classifier.col.predicted"]]) <= set(names)
    assert all(p.startswith("负面 ") for p in wrong[zh["classifier.col.probs"]])
    assert list(table(at, cls, zh["classifier.model.tfidf"])[cls]) == names, "the try box"
    conflicts = table(at, zh["classifier.col.text"], zh["classifier.col.copies"])
    assert conflicts.iloc[0][zh["classifier.col.copies"]] == "负面：71、中性：232、正面：0"
    assert any("（`负面`、`中性`、`正面`）" in s.value for s in at.success)
    widths = json.loads(next(d.proto.columns for d in at.dataframe if zh["classifier.col.true"] in d.value.columns))
    assert widths[zh["classifier.col.text"]]["width"] == "large"


HALF_WIDTH = re.compile(r"[,:;()?!](?=[\u4e00-\u9fff])|(?<=[\u4e00-\u9fff])[,:;()?!]")


def test_the_chinese_strings_use_full_width_punctuation():
    """Only the classifier's Chinese used , : ; ( ) beside Chinese characters; code, numbers and
    placeholders keep theirs."""
    import pathlib

    zh = json.loads(pathlib.Path("assets/locales/zh/classifier.json").read_text(encoding="utf-8"))
    prose = {k: re.sub(r"`[^`]*`|%?\{[^}]*\}", "", v) for k, v in zh.items()}
    assert {k: v for k, v in prose.items() if HALF_WIDTH.search(v)} == {}
    assert zh["classifier.cal.hover"] == "置信度 %{x:.2f}，准确率 %{y:.2f}，%{customdata} 个样本"
