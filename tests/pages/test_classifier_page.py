"""The classifier page on the real tweets and the offline MiniLM: arrival, a short fine-tune, bad input."""

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
        ("one.csv", b"text,label\ngood,pos\nfine,pos\n", "only one label ('pos', 2 rows)"),
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
