"""Hallucination detection: self-consistency scores, token uncertainty and ROC/AUC, each against an
independent computation (numpy on sentence-transformers' own embeddings, numbers worked out by hand,
sklearn.metrics, transformers' model.generate), and a real short run on three shipped questions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from backends import trust
from backends.models.cache import shared_cache
from backends.trust.selfcheck import minilm_encoder, unigram_model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for this file's model work: on a shared 2-core box two OpenMP threads per
    decode step stall each other (the job runner gives jobs their own count the same way)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def smollm():
    return shared_cache().get("smollm2-135m-instruct")


def test_split_sentences_spans():
    text = "Paris is the capital. It is in France!  Big city?\nYes"
    got = trust.split_sentences(text)
    assert [s.text for s in got] == ["Paris is the capital.", "It is in France!", "Big city?", "Yes"]
    assert all(text[s.start : s.end] == s.text for s in got)


def test_minilm_score_by_hand():
    sentences = ["The capital of France is Paris.", "It has a famous tower."]
    samples = [
        "Paris is the capital of France. The Eiffel Tower is there.",
        "The capital of France is Lyon.",
        "France's capital city is Paris.",
        "",
    ]
    sample_sentences = [
        ["Paris is the capital of France.", "The Eiffel Tower is there."],
        ["The capital of France is Lyon."],
        ["France's capital city is Paris."],
        [],
    ]
    model = shared_cache().get("all-minilm-l6-v2", variant="sentence").model
    expected = []
    for sentence in sentences:
        a = model.encode([sentence], convert_to_numpy=True)[0]
        best = []
        for group in sample_sentences:
            if not group:
                best.append(0.0)
                continue
            b = model.encode(group, convert_to_numpy=True)
            cos = b @ a / (np.linalg.norm(b, axis=1) * np.linalg.norm(a))
            best.append(float(cos.max()))
        expected.append(1.0 - sum(best) / len(best))
    got = trust.minilm_scores(sentences, samples, minilm_encoder())
    assert got == pytest.approx(expected, abs=1e-5)
    # the supported sentence is more consistent than the unsupported one
    assert got[0] < got[1]


def test_unigram_score_by_hand():
    main = "The cat sat."
    samples = ["the cat ran", "A dog sat!"]
    # words: the cat sat | the cat ran | a dog sat -> 9 tokens; vocabulary the, cat, sat, ran, a, dog + <unk> = 7
    # p(the) = p(cat) = p(sat) = (2 + 1) / (9 + 7); p(dog) = (1 + 1) / 16; p(unseen) = 1 / 16
    prob = unigram_model([*samples, main])
    assert prob("the") == pytest.approx(3 / 16)
    assert prob("dog") == pytest.approx(2 / 16)
    assert prob("zebra") == pytest.approx(1 / 16)
    got = trust.unigram_scores(["The cat sat.", "A zebra sat."], samples, main)
    assert got[0].mean_neg_logprob == pytest.approx(-math.log(3 / 16))
    assert got[0].max_neg_logprob == pytest.approx(-math.log(3 / 16))
    expected = (-math.log(2 / 16) - math.log(1 / 16) - math.log(3 / 16)) / 3  # a, zebra, sat
    assert got[1].mean_neg_logprob == pytest.approx(expected)
    assert got[1].max_neg_logprob == pytest.approx(-math.log(1 / 16))
    assert got[1].words == 3


def test_roc_and_auc_match_sklearn():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, size=200)
    scores = np.round(rng.normal(size=200) + 0.8 * labels, 1)  # rounded: many ties
    curve = trust.roc_curve(labels, scores)
    fpr, tpr, thresholds = sk_roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(curve.fpr, fpr)
    np.testing.assert_allclose(curve.tpr, tpr)
    np.testing.assert_allclose(curve.thresholds[1:], thresholds[1:])
    reference = roc_auc_score(labels, scores)
    assert trust.roc_auc(labels, scores) == pytest.approx(reference, abs=1e-12)
    assert trust.auc_mann_whitney(labels, scores) == pytest.approx(reference, abs=1e-12)
    # a hand case with a tie: positives 0.9, 0.5; negatives 0.5, 0.1 -> (1 + 1 + 0.5 + 1) / 4
    assert trust.roc_auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.875)
    with pytest.raises(ValueError):
        trust.roc_auc([1, 1], [0.2, 0.3])


def _generate(smollm, prompt, **kwargs):
    with torch.inference_mode():
        return smollm.model.generate(
            torch.tensor([prompt]),
            max_new_tokens=10,
            pad_token_id=smollm.tokenizer.eos_token_id,
            return_dict_in_generate=True,
            output_logits=True,
            **kwargs,
        )


def test_sampling_is_seeded_and_equals_transformers(smollm):
    question = "What is the largest ocean on Earth?"
    a = trust.run_selfcheck(question, n_samples=2, seed=3, max_new_tokens=10)
    b = trust.run_selfcheck(question, n_samples=2, seed=3, max_new_tokens=10)
    assert a.samples == b.samples and a.answer == b.answer
    prompt = trust.selfcheck_prompt(smollm, question)
    stop = smollm.model.generation_config.eos_token_id
    stop = set(stop if isinstance(stop, list) else [stop])
    for i, sample in enumerate(a.samples):  # sample i is model.generate's draw after manual_seed(seed + i)
        torch.manual_seed(3 + i)
        out = _generate(smollm, prompt, do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
        ids = [t for t in out.sequences[0, len(prompt) :].tolist() if t not in stop]
        assert sample == smollm.tokenizer.decode(ids, skip_special_tokens=True).strip()
    # greedy: the same tokens, and each token's probability and entropy from transformers' own logits
    out = _generate(smollm, prompt, do_sample=False)
    ids = [t for t in out.sequences[0, len(prompt) :].tolist() if t not in stop]
    assert a.answer == smollm.tokenizer.decode(ids, skip_special_tokens=True)
    for k, token in enumerate(a.tokens):
        dist = torch.distributions.Categorical(logits=out.logits[k][0].float())
        assert token.token_id == ids[k]
        assert token.entropy == pytest.approx(float(dist.entropy()), abs=2e-3)
        assert token.prob == pytest.approx(float(dist.probs[ids[k]]), abs=1e-4)


def test_real_run_on_three_questions():
    shipped = {q.id: q for q in trust.shipped_questions()}
    questions = [shipped["c01"], shipped["s06"], shipped["i06"]]
    report = trust.evaluate_detect(n_samples=2, questions=questions, seed=0)
    assert [r.id for r in report.rows] == ["c01", "s06", "i06"]
    for q, row in zip(questions, report.rows, strict=True):
        assert row.answer.strip(), "the model said something"
        assert row.grade == trust.grade(q, row.answer)  # graded from the model's own words
        assert len(row.samples) == 2
        assert row.sentences and all(0.0 <= s.minilm <= 2.0 for s in row.sentences)
        assert row.scores["minilm"] == max(s.minilm for s in row.sentences)
    counts = report.counts
    assert sum(counts.values()) == 3
    assert counts == {g: sum(r.grade == g for r in report.rows) for g in ("right", "wrong", "abstained")}
    kept = [r for r in report.rows if r.grade != "abstained"]
    labels = [int(r.grade == "wrong") for r in kept]
    if 0 < sum(labels) < len(labels):
        for scorer in trust.SCORERS:
            reference = roc_auc_score(labels, [r.scores[scorer] for r in kept])
            assert report.aucs[scorer] == pytest.approx(reference)
    else:
        assert report.selfcheck_auc is None
    # memoized: the same settings give the very same report object
    assert trust.evaluate_detect(n_samples=2, questions=questions, seed=0) is report
