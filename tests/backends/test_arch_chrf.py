"""chrF written by hand equals sacrebleu's CHRF() (its defaults: character 6-grams, beta 2, spaces
removed), sentence and corpus scores, on Chinese couplet lines and English sentences."""

import pytest
from sacrebleu.metrics import CHRF

from backends.architectures.chrf import corpus_chrf, sentence_chrf
from backends.architectures.couplets import couplet_pairs

ENGLISH = [
    ("The cat sat on the mat.", "The cat is sitting on the mat."),
    ("A quick brown fox jumps over the lazy dog", "The quick brown fox jumped over a lazy dog."),
    ("hello   world", "hello world"),  # spaces do not count
    ("It is raining.", "It's raining today!"),
    ("Nothing in common", "zzz"),
    ("", "An empty hypothesis"),
    ("ab", "a"),  # the reference has no bigram: the hypothesis's bigrams do not count either
    ("Colourless green ideas sleep furiously", "Colorless green ideas sleep furiously"),
]


def chinese():
    """Real pairs: each held-out reference against another line's second half and against itself, cut."""
    _, held = couplet_pairs()
    refs = [p.tgt for p in held[:40]]
    hyps = [held[i + 1].tgt for i in range(20)] + [r[:3] + "春" + r[4:] for r in refs[20:40]]
    return list(zip(hyps, refs))


@pytest.mark.parametrize("pairs", [ENGLISH, "chinese"])
def test_sentence_and_corpus_scores_equal_sacrebleu(pairs):
    pairs = chinese() if pairs == "chinese" else pairs
    metric = CHRF()
    for hyp, ref in pairs:
        assert sentence_chrf(hyp, ref) == pytest.approx(metric.sentence_score(hyp, [ref]).score, abs=1e-9), (hyp, ref)
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    assert corpus_chrf(hyps, refs) == pytest.approx(metric.corpus_score(hyps, [refs]).score, abs=1e-9)


def test_identical_is_100_disjoint_is_0_and_corpus_is_not_the_mean():
    assert sentence_chrf("床前明月光", "床前明月光") == pytest.approx(100.0)
    assert sentence_chrf("床前明月光", "疑是地上霜") == 0.0
    hyps, refs = ["床前明月光", "低头"], ["床前明月光", "低头思故乡"]
    mean = (sentence_chrf(hyps[0], refs[0]) + sentence_chrf(hyps[1], refs[1])) / 2
    assert corpus_chrf(hyps, refs) != pytest.approx(mean)
    assert corpus_chrf(hyps, refs) == pytest.approx(CHRF().corpus_score(hyps, [refs]).score)
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_chrf(hyps, refs[:1])
