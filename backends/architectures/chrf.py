"""chrF (Popović 2015): an F-score over character n-grams, n = 1..6, recall weighted beta = 2 times
as much as precision. Written out to match sacrebleu's `CHRF()` defaults (tests hold it equal):

- spaces are removed before n-grams are taken (whitespace=False), case is kept;
- for each order n: hyp = hypothesis n-grams, ref = reference n-grams, match = the clipped overlap
  (an n-gram counts at most as often as in the reference); when the reference has no n-gram of
  that order, the hypothesis's count is taken as 0 too;
- precision and recall are averaged over the orders where both sides have n-grams (the "effective
  order"), then F_beta = (1 + beta²) P R / (beta² P + R), times 100;
- a corpus score adds up the counts of all sentences first, then computes one F_beta from them.
"""

from __future__ import annotations

from collections import Counter

CHAR_ORDER = 6
BETA = 2


def char_ngrams(text: str, n: int) -> Counter:
    text = "".join(text.split())
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def chrf_stats(hypothesis: str, reference: str, order: int = CHAR_ORDER) -> list[tuple[int, int, int]]:
    """(hypothesis n-grams, reference n-grams, matches) for n = 1..order."""
    stats = []
    for n in range(1, order + 1):
        hyp, ref = char_ngrams(hypothesis, n), char_ngrams(reference, n)
        match = sum(min(count, ref[gram]) for gram, count in hyp.items() if gram in ref)
        stats.append((sum(hyp.values()) if ref else 0, sum(ref.values()), match))
    return stats


def f_score(stats: list[tuple[int, int, int]], beta: float = BETA) -> float:
    precisions, recalls = [], []
    for n_hyp, n_ref, n_match in stats:
        if n_hyp > 0 and n_ref > 0:
            precisions.append(n_match / n_hyp)
            recalls.append(n_match / n_ref)
    if not precisions:
        return 0.0
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    if p + r == 0:
        return 0.0
    return 100 * (1 + beta**2) * p * r / (beta**2 * p + r)


def sentence_chrf(hypothesis: str, reference: str, order: int = CHAR_ORDER, beta: float = BETA) -> float:
    return f_score(chrf_stats(hypothesis, reference, order), beta)


def corpus_chrf(hypotheses: list[str], references: list[str], order: int = CHAR_ORDER, beta: float = BETA) -> float:
    """One score from the n-gram counts of all sentences added up (not the mean of sentence scores)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references.")
    totals = [[0, 0, 0] for _ in range(order)]
    for hyp, ref in zip(hypotheses, references):
        for total, stat in zip(totals, chrf_stats(hyp, ref, order)):
            for i in range(3):
                total[i] += stat[i]
    return f_score([tuple(t) for t in totals], beta)
