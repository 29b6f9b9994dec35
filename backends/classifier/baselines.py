"""The two baselines every fine-tune is compared with, on the same split.

- TF-IDF + logistic regression (scikit-learn): word and word-pair counts, no pretrained model.
- Linear probe: the frozen MiniLM encoder's mean-pooled vectors, a logistic regression on top.
  The fitted scaler + regression are folded into one torch Linear layer, so the probe is an
  EncoderClassifier like the fine-tuned models and gets the same "try it" and attributions.

Both pick their regularisation C on the validation part by macro-F1 (the test part is never
looked at until the end), so a fine-tune has to beat a tuned baseline.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from backends.classifier.data import Split
from backends.classifier.metrics import report
from backends.classifier.model import EncoderClassifier, ModelRun, embed

C_GRID = (0.25, 1.0, 4.0, 16.0)
PROBE_C_GRID = (0.01, 0.1, 1.0)


def _best_c(fit, score, grid) -> tuple[object, list]:
    history, best = [], None
    for c in grid:
        model = fit(c)
        f1 = score(model)
        history.append({"C": c, "val_macro_f1": f1})
        if best is None or f1 > best[1]:
            best = (model, f1)
    return best[0], history


def tfidf_pipeline(c: float = 1.0):
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True, lowercase=True, max_features=200_000),
        LogisticRegression(C=c, max_iter=2000, class_weight="balanced", solver="saga", random_state=0),
    )


def tfidf_baseline(split: Split, grid=C_GRID) -> ModelRun:
    started = time.perf_counter()
    train, val, test = split.train, split.val, split.test
    names = split.label_names

    def fit(c):
        return tfidf_pipeline(c).fit(list(train.texts), list(train.labels))

    def score(model):
        return report(val.labels, full_probs(model, val.texts, len(names)), names).macro_f1

    model, history = _best_c(fit, score, grid)
    best = max(history, key=lambda h: h["val_macro_f1"])
    return ModelRun(
        "tfidf",
        names,
        full_probs(model, test.texts, len(names)),
        time.perf_counter() - started,
        model,
        {"ngram_range": [1, 2], "sublinear_tf": True, "class_weight": "balanced", "solver": "saga", "C": best["C"]},
        history,
        val_macro_f1=best["val_macro_f1"],
    )


def full_probs(model, texts, n_classes: int) -> np.ndarray:
    """predict_proba with a column for every class (scikit-learn drops classes absent from training)."""
    probs = model.predict_proba(list(texts))
    out = np.zeros((len(probs), n_classes))
    out[:, model.classes_] = probs
    return out


def fold_into_linear(scaler: StandardScaler, logreg: LogisticRegression, n_classes: int) -> torch.nn.Linear:
    """softmax(W ((x - mu) / sigma) + b) as one Linear: W' = W / sigma, b' = b - W' mu."""
    w = logreg.coef_ / scaler.scale_
    b = logreg.intercept_ - w @ scaler.mean_
    if w.shape[0] == 1:  # binary: scikit-learn keeps one row, the logit of class 1
        w, b = np.vstack([np.zeros_like(w[0]), w[0]]), np.array([0.0, b[0]])
    weight, bias = np.zeros((n_classes, w.shape[1])), np.full(n_classes, -1e4)
    weight[logreg.classes_], bias[logreg.classes_] = w, b
    layer = torch.nn.Linear(w.shape[1], n_classes)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))
    return layer.requires_grad_(False)


def linear_probe(
    encoder, tokenizer, split: Split, max_length: int = 64, grid=PROBE_C_GRID, should_stop=None, on_progress=None
) -> ModelRun:
    """Frozen encoder features + logistic regression. `encoder` may be the shared cached model: it is only read."""
    started = time.perf_counter()
    names = split.label_names
    parts = (split.train, split.val, split.test)
    total = sum(len(p) for p in parts)
    done = [0]

    def progress(n, _):
        if on_progress is not None:
            on_progress(done[0] + n, total)

    features = []
    for part in parts:
        features.append(embed(encoder, tokenizer, part.texts, max_length, should_stop=should_stop, on_batch=progress))
        done[0] += len(part)
    x_train, x_val, x_test = features
    scaler = StandardScaler().fit(x_train)

    def fit(c):
        return LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(
            scaler.transform(x_train), list(split.train.labels)
        )

    def score(model):
        return (
            report(split.val.labels, model.predict_proba(scaler.transform(x_val)), names).macro_f1
            if len(model.classes_) == len(names)
            else 0.0
        )

    logreg, history = _best_c(fit, score, grid)
    best = max(history, key=lambda h: h["val_macro_f1"])
    classifier = EncoderClassifier(encoder, len(names), dropout=0.0)
    classifier.head = fold_into_linear(scaler, logreg, len(names))
    classifier.eval()
    probs = np.zeros((len(x_test), len(names)))
    probs[:, logreg.classes_] = logreg.predict_proba(scaler.transform(x_test))
    return ModelRun(
        "probe",
        names,
        probs,
        time.perf_counter() - started,
        classifier,
        {
            "max_length": max_length,
            "pooling": "mean",
            "scaler": "standard",
            "class_weight": "balanced",
            "C": best["C"],
        },
        history,
        val_macro_f1=best["val_macro_f1"],
    )


def probe_job(ctx, encoder, tokenizer, split: Split, max_length: int = 64) -> ModelRun:
    """Background-job form of linear_probe (see backends/core/jobs.py)."""

    def on_progress(n, total):
        ctx.report(0.95 * n / total, f"embedded {n}/{total}", kind="embed", done=n, total=total)

    run = linear_probe(encoder, tokenizer, split, max_length, should_stop=lambda: ctx.stopped, on_progress=on_progress)
    ctx.report(1.0, "done", kind="end")
    return run
