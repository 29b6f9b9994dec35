"""The TF-IDF baseline and the frozen-MiniLM linear probe on a small split of the real tweets."""

import numpy as np
import pytest
import torch

from backends.classifier.baselines import linear_probe, tfidf_baseline
from backends.classifier.data import load_tweets, split
from backends.classifier.explain import explain, predict_texts
from backends.classifier.metrics import report
from backends.classifier.model import predict_proba
from backends.models.cache import shared_cache


@pytest.fixture(scope="module")
def small_split():
    return split(load_tweets(), 0.1, 0.1, seed=0, max_train=1500, max_val=150, max_test=300)


def test_tfidf_baseline_learns_and_picks_c_on_validation(small_split):
    run = tfidf_baseline(small_split)
    r = report(small_split.test.labels, run.test_probs, small_split.label_names)
    assert r.macro_f1 > 0.45 and r.accuracy > 0.5, "well above chance (0.33) on three classes"
    assert run.settings["C"] == max(run.history, key=lambda h: h["val_macro_f1"])["C"]
    assert np.allclose(run.test_probs.sum(1), 1.0)
    assert np.allclose(predict_texts(run, None, small_split.test.texts[:5]), run.test_probs[:5])
    why = explain(run, None, "I hate delays, worst airline ever")
    assert why.method == "tf-idf x coefficient" and why.target == small_split.label_names.index("negative")
    # exactly linear: the contributions plus the intercept are the class's score
    k = why.target
    score = run.model.decision_function(["I hate delays, worst airline ever"])[0][k]
    assert sum(why.scores) + run.model[-1].intercept_[k] == pytest.approx(score)
    assert {"hate", "worst", "airline"} <= set(why.tokens)


def test_linear_probe_head_equals_scikit_learn_and_leaves_the_cached_encoder_alone():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tiny = split(load_tweets(), 0.1, 0.1, seed=1, max_train=200, max_val=60, max_test=60)
        loaded = shared_cache().get("all-minilm-l6-v2")
        flags = [p.requires_grad for p in loaded.model.parameters()]
        run = linear_probe(loaded.model, loaded.tokenizer, tiny, max_length=32)
        assert run.model.encoder is loaded.model, "the probe reads the shared encoder; no copy"
        # the scaler + logistic regression folded into one Linear give scikit-learn's probabilities
        probs = predict_proba(run.model, loaded.tokenizer, tiny.test.texts, 32)
        assert np.allclose(probs, run.test_probs, atol=1e-4)
        assert report(tiny.test.labels, run.test_probs, tiny.label_names).macro_f1 > 0.34
        why = explain(run, loaded.tokenizer, "Thank you so much, great flight!")
        assert why.tokens[0] == "[CLS]" and len(why.scores) == len(why.tokens)
        assert [p.requires_grad for p in loaded.model.parameters()] == flags
        assert all(p.grad is None for p in loaded.model.parameters()) and not loaded.model.training
    finally:
        torch.set_num_threads(before)
