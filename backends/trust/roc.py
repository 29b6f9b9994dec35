"""ROC curve and its area, by hand (tests compare with sklearn.metrics).

A detector gives each item a score (higher = more likely a hallucination); the labels say which items
really are (1) or are not (0). Sweeping a threshold from high to low, every threshold flags the items
scoring at or above it: the true-positive rate (flagged positives / positives) against the
false-positive rate (flagged negatives / negatives) is the ROC curve. Its area (AUC) is the chance that
a random positive scores above a random negative (ties count one half): 0.5 is a coin, 1 is perfect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RocCurve:
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    thresholds: tuple[float, ...]  # the first is +inf (nothing flagged), as in sklearn


def _checked(labels: Sequence[int], scores: Sequence[float]) -> tuple[list[int], list[float]]:
    labels, scores = [int(y) for y in labels], [float(s) for s in scores]
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores.")
    if any(y not in (0, 1) for y in labels):
        raise ValueError("Labels must be 0 or 1.")
    if not 0 < sum(labels) < len(labels):
        raise ValueError("An ROC curve needs at least one positive and one negative item.")
    if any(s != s for s in scores):
        raise ValueError("A score is NaN.")
    return labels, scores


def roc_curve(labels: Sequence[int], scores: Sequence[float]) -> RocCurve:
    """One point per distinct score (tied items are flagged together), from (0, 0) to (1, 1).

    Unlike sklearn's default (drop_intermediate=True), collinear points are kept."""
    labels, scores = _checked(labels, scores)
    pos = sum(labels)
    neg = len(labels) - pos
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    fpr, tpr, thresholds = [0.0], [0.0], [float("inf")]
    tp = fp = 0
    for k, i in enumerate(order):
        tp += labels[i]
        fp += 1 - labels[i]
        if k + 1 < len(order) and scores[order[k + 1]] == scores[i]:
            continue  # the next item ties: one threshold flags both
        fpr.append(fp / neg)
        tpr.append(tp / pos)
        thresholds.append(scores[i])
    return RocCurve(tuple(fpr), tuple(tpr), tuple(thresholds))


def auc_trapezoid(curve: RocCurve) -> float:
    """Area under the curve's points by the trapezoid rule."""
    area = 0.0
    for k in range(1, len(curve.fpr)):
        area += (curve.fpr[k] - curve.fpr[k - 1]) * (curve.tpr[k] + curve.tpr[k - 1]) / 2
    return area


def auc_mann_whitney(labels: Sequence[int], scores: Sequence[float]) -> float:
    """P(score of a positive > score of a negative) + P(tie) / 2, over all positive-negative pairs."""
    labels, scores = _checked(labels, scores)
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """The AUC (trapezoids over roc_curve; equal to auc_mann_whitney, which the tests check)."""
    return auc_trapezoid(roc_curve(labels, scores))
