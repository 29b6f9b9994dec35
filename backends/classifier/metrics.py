"""Classification metrics written out by hand (numpy only), so the page can show how each is computed.

Tested against hand-computed values and scikit-learn's own functions on the same predictions.
Conventions follow scikit-learn's: a precision or recall with a zero denominator is 0, and
macro-F1 is the plain mean of the per-class F1 scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassScores:
    label: str
    precision: float
    recall: float
    f1: float
    support: int  # true examples of this class


@dataclass(frozen=True)
class CalibrationBin:
    lower: float
    upper: float
    count: int
    confidence: float  # mean top probability in the bin (nan when empty)
    accuracy: float  # share of correct predictions in the bin (nan when empty)


@dataclass(frozen=True)
class Report:
    accuracy: float
    macro_f1: float
    per_class: tuple[ClassScores, ...]
    confusion: np.ndarray  # [true, predicted] counts
    calibration: tuple[CalibrationBin, ...]
    ece: float  # expected calibration error: sum over bins of count/n * |accuracy - confidence|

    @property
    def confusion_normalised(self) -> np.ndarray:
        return normalise_rows(self.confusion)


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs: rows are the truth, columns the prediction."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.shape[0]} true labels but {y_pred.shape[0]} predictions.")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its total (the share of each true class predicted as each class); empty rows stay 0."""
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)


def _safe_div(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def per_class_scores(matrix: np.ndarray, label_names) -> tuple[ClassScores, ...]:
    scores = []
    for k, name in enumerate(label_names):
        tp = matrix[k, k]
        predicted, actual = matrix[:, k].sum(), matrix[k, :].sum()
        p, r = _safe_div(tp, predicted), _safe_div(tp, actual)
        scores.append(ClassScores(name, p, r, _safe_div(2 * p * r, p + r), int(actual)))
    return tuple(scores)


def calibration_bins(probs: np.ndarray, y_true, n_bins: int = 10) -> tuple[CalibrationBin, ...]:
    """Bins of the top probability (the model's confidence) against how often the top class was right."""
    probs = np.asarray(probs, dtype=float)
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = predicted == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds (edge_i, edge_i+1]; a confidence of exactly 0 goes in the first bin.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins = []
    for i in range(n_bins):
        inside = which == i
        n = int(inside.sum())
        bins.append(
            CalibrationBin(
                float(edges[i]),
                float(edges[i + 1]),
                n,
                float(confidence[inside].mean()) if n else float("nan"),
                float(correct[inside].mean()) if n else float("nan"),
            )
        )
    return tuple(bins)


def expected_calibration_error(bins: tuple[CalibrationBin, ...]) -> float:
    total = sum(b.count for b in bins)
    return sum(b.count / total * abs(b.accuracy - b.confidence) for b in bins if b.count) if total else 0.0


def report(y_true, probs: np.ndarray, label_names, n_bins: int = 10) -> Report:
    """Everything the results view shows, from the true labels and each example's class probabilities."""
    probs = np.asarray(probs, dtype=float)
    y_true = np.asarray(y_true, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[1] != len(label_names):
        raise ValueError(f"probabilities of shape {probs.shape} do not match {len(label_names)} classes.")
    if len(y_true) == 0:
        raise ValueError("no examples to score.")
    y_pred = probs.argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred, len(label_names))
    per_class = per_class_scores(matrix, label_names)
    bins = calibration_bins(probs, y_true, n_bins)
    return Report(
        accuracy=float(np.trace(matrix)) / len(y_true),
        macro_f1=float(np.mean([c.f1 for c in per_class])),
        per_class=per_class,
        confusion=matrix,
        calibration=bins,
        ece=expected_calibration_error(bins),
    )
