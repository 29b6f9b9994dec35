"""Classifier metrics by hand on a fixed prediction set, and against scikit-learn on random ones."""

from itertools import pairwise

import numpy as np
import pytest
from sklearn import metrics as skm

from backends.classifier.metrics import (
    calibration_bins,
    confusion_matrix,
    normalise_rows,
    report,
)

NAMES = ("neg", "neu", "pos")
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1]
TOP = [0.9, 0.8, 0.6, 0.55, 0.95, 0.7, 0.45, 0.85, 0.65, 0.5]


def fixed_probs() -> np.ndarray:
    """The top probability on the predicted class, the rest split 0.6 / 0.4 between the other two."""
    probs = np.zeros((len(Y_PRED), 3))
    for i, (k, top) in enumerate(zip(Y_PRED, TOP)):
        others = [c for c in range(3) if c != k]
        probs[i, k], probs[i, others[0]], probs[i, others[1]] = top, 0.6 * (1 - top), 0.4 * (1 - top)
    return probs


def test_fixed_predictions_match_the_hand_computed_values():
    r = report(Y_TRUE, fixed_probs(), NAMES, n_bins=2)
    assert r.confusion.tolist() == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    assert r.accuracy == pytest.approx(0.6)
    # neg: TP 2 of 3 predicted, 4 true; neu: 2 of 4 predicted, 3 true; pos: 2 of 3 predicted, 3 true
    expected = {"neg": (2 / 3, 1 / 2, 4 / 7, 4), "neu": (1 / 2, 2 / 3, 4 / 7, 3), "pos": (2 / 3, 2 / 3, 2 / 3, 3)}
    for c in r.per_class:
        p, rec, f1, support = expected[c.label]
        assert (c.precision, c.recall, c.f1) == pytest.approx((p, rec, f1)) and c.support == support
    assert r.macro_f1 == pytest.approx(38 / 63)
    low, high = r.calibration
    assert (low.count, low.confidence, low.accuracy) == (2, pytest.approx(0.475), 0.0)
    assert (high.count, high.confidence, high.accuracy) == (8, pytest.approx(0.75), pytest.approx(0.75))
    assert r.ece == pytest.approx(0.2 * 0.475)
    assert r.confusion_normalised[0].tolist() == pytest.approx([0.5, 0.25, 0.25])


@pytest.mark.parametrize("seed", range(5))
def test_random_predictions_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    y = rng.integers(0, k, 300)
    probs = rng.dirichlet(np.ones(k), 300)
    names = [f"c{i}" for i in range(k)]
    r = report(y, probs, names)
    pred = probs.argmax(1)
    assert r.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert r.macro_f1 == pytest.approx(skm.f1_score(y, pred, average="macro", labels=range(k), zero_division=0))
    p, rec, f1, support = skm.precision_recall_fscore_support(y, pred, labels=range(k), zero_division=0)
    assert [c.precision for c in r.per_class] == pytest.approx(p.tolist())
    assert [c.recall for c in r.per_class] == pytest.approx(rec.tolist())
    assert [c.f1 for c in r.per_class] == pytest.approx(f1.tolist())
    assert [c.support for c in r.per_class] == support.tolist()
    assert (r.confusion == skm.confusion_matrix(y, pred, labels=range(k))).all()
    assert np.allclose(r.confusion_normalised, skm.confusion_matrix(y, pred, labels=range(k), normalize="true"))


def top_label_predictions(seed: int, n: int = 500):
    """Random multi-class probabilities, a fifth of the rows with a top probability exactly on a bin edge
    (0.5, 0.6, ..., 1.0) to pin the convention there, and labels drawn so the top class is right with
    about its probability (a roughly calibrated model: every bin holds right and wrong answers)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 6))
    probs = rng.dirichlet(np.full(k, 0.5), n)
    for i in rng.choice(n, n // 5, replace=False):
        top = rng.choice([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
        row = np.full(k, (1 - top) / (k - 1))
        row[rng.integers(k)] = top
        probs[i] = row
    pred = probs.argmax(1)
    wrong = (pred + rng.integers(1, k, n)) % k
    y = np.where(rng.uniform(size=n) < probs.max(1), pred, wrong)
    return probs, y


@pytest.mark.parametrize("seed", range(5))
def test_calibration_bins_are_scikit_learns_reliability_curve_of_the_top_label(seed):
    """scikit-learn's calibration_curve is binary; our bins are top-label calibration (Guo et al., 2017):
    its curve for the event "the top class is right" against the top probability, the same uniform bins
    (lower edge excluded, upper included). Counts and ECE: the definition applied by hand."""
    from sklearn.calibration import calibration_curve

    probs, y = top_label_predictions(seed)
    confidence, correct = probs.max(1), (probs.argmax(1) == y).astype(int)
    for n_bins in (5, 10, 15):
        bins = calibration_bins(probs, y, n_bins=n_bins)
        accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=n_bins, strategy="uniform")
        filled = [b for b in bins if b.count]
        assert [b.accuracy for b in filled] == pytest.approx(accuracy.tolist(), abs=1e-12)
        assert [b.confidence for b in filled] == pytest.approx(mean_confidence.tolist(), abs=1e-12)
        edges = np.linspace(0, 1, n_bins + 1)
        counts = [int(((confidence > lo) & (confidence <= hi)).sum()) for lo, hi in pairwise(edges)]
        assert [b.count for b in bins] == counts and sum(counts) == len(y)
        by_hand = sum(c / len(y) * abs(a - m) for c, a, m in zip([c for c in counts if c], accuracy, mean_confidence))
        assert report(y, probs, [f"c{i}" for i in range(probs.shape[1])], n_bins).ece == pytest.approx(by_hand)


def test_binary_calibration_agrees_with_scikit_learn_calibration_curve():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(0)
    p1 = rng.uniform(0.5, 1.0, 400)  # confidence of class 1 always the top one
    y = (rng.uniform(size=400) < p1).astype(int)
    bins = calibration_bins(np.stack([1 - p1, p1], 1), y, n_bins=10)
    acc, conf = calibration_curve(y, p1, n_bins=10, strategy="uniform")
    filled = [b for b in bins if b.count]
    assert [b.accuracy for b in filled] == pytest.approx(acc.tolist())
    assert [b.confidence for b in filled] == pytest.approx(conf.tolist())


def test_missing_classes_give_zero_scores_not_errors():
    probs = np.eye(3)[[0, 0, 0]]
    r = report([0, 1, 1], probs, NAMES)
    assert [c.f1 for c in r.per_class] == pytest.approx([0.5, 0.0, 0.0])
    assert normalise_rows(confusion_matrix([0], [0], 2)).tolist() == [[1.0, 0.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match="do not match 4 classes"):
        report([0], probs[:1], ["a", "b", "c", "d"])
