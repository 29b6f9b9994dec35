"""Bradley-Terry ratings: a hand computation, and scipy's maximum likelihood as the reference.

The reference maximises the same log-likelihood (ties as half a win each, `prior` virtual ties per
compared pair) with scipy.optimize, never with our MM loop.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from backends.alignment import Vote
from backends.alignment.ratings import RatingError, fit, win_rates


def vote(a, b, verdict, k=[0]):  # noqa: B006 - a counter for unique ids
    k[0] += 1
    return Vote(f"v{k[0]}", "SET", "voter", 0, a, b, "x", "y", verdict, float(k[0]))


def reference_strengths(votes, prior, sources):
    """scipy maximum likelihood of the half-win Bradley-Terry model, geometric mean 1."""
    pts = {"A": 1.0, "B": 0.0, "tie": 0.5, "both_bad": 0.5}
    rows = [(v.source_a, v.source_b, pts[v.verdict]) for v in votes]
    pairs = {tuple(sorted((a, b))) for a, b, _ in rows}
    rows += [(a, b, 0.5) for a, b in pairs for _ in range(1)] if prior else []
    weight = [1.0] * len(votes) + [prior] * (len(rows) - len(votes))
    idx = {s: k for k, s in enumerate(sources)}

    def nll(theta):
        t = np.concatenate([[0.0], theta])
        total = 0.0
        for (a, b, pa), w in zip(rows, weight, strict=True):
            d = t[idx[a]] - t[idx[b]]
            total -= w * (pa * -np.logaddexp(0, -d) + (1 - pa) * -np.logaddexp(0, d))
        return total

    res = minimize(nll, np.zeros(len(sources) - 1), method="BFGS", options={"gtol": 1e-10})
    t = np.concatenate([[0.0], res.x])
    t -= t.mean()
    return dict(zip(sources, np.exp(t), strict=True))


def test_two_sources_by_hand():
    # A: 3 wins, 1 loss, 1 tie -> 3.5 of 5 points; the MLE gives p_A / (p_A + p_B) = 0.7.
    votes = [vote("A", "B", "A")] * 2 + [vote("B", "A", "B"), vote("A", "B", "B"), vote("A", "B", "tie")]
    r = fit(votes, prior=0, resamples=0)
    assert r.strength["A"] == pytest.approx(math.sqrt(7 / 3), rel=1e-8)
    assert r.strength["B"] == pytest.approx(math.sqrt(3 / 7), rel=1e-8)
    assert r.elo["A"] - r.elo["B"] == pytest.approx(400 * math.log10(7 / 3), rel=1e-8)
    assert r.sources == ("A", "B") and r.votes == 5


def test_a_cycle_gives_equal_strengths():
    votes = [vote("A", "B", "A"), vote("B", "C", "A"), vote("C", "A", "A")]
    r = fit(votes, prior=0, resamples=0)
    assert all(r.strength[s] == pytest.approx(1.0, abs=1e-9) for s in "ABC")


@pytest.mark.parametrize("prior", [0.0, 1.0])
def test_matches_scipy_maximum_likelihood(prior):
    rng = np.random.default_rng(7)
    true = {"base": 0.5, "sft": 1.0, "dpo": 2.0, "gpt": 3.0}
    names = list(true)
    votes = []
    for _ in range(120):
        a, b = rng.choice(names, 2, replace=False)
        u = rng.random()
        pa = true[a] / (true[a] + true[b])
        votes.append(
            vote(a, b, "tie" if u < 0.15 else ("both_bad" if u < 0.2 else ("A" if rng.random() < pa else "B")))
        )
    r = fit(votes, prior=prior, resamples=0)
    ref = reference_strengths(votes, prior, sorted(true))
    for s in true:
        assert r.strength[s] == pytest.approx(ref[s], rel=1e-5)
    assert r.sources[0] == max(ref, key=ref.get)


def test_bootstrap_interval_matches_a_reference_bootstrap_and_is_seeded():
    rng = np.random.default_rng(3)
    votes = [vote(*rng.choice(["x", "y", "z"], 2, replace=False), rng.choice(["A", "B", "tie"])) for _ in range(60)]
    r = fit(votes, prior=1.0, resamples=40, seed=11)
    assert fit(votes, prior=1.0, resamples=40, seed=11) == r
    # the same resamples (numpy's integers from the same seed), each fitted by scipy instead
    draw = np.random.default_rng(11)
    elos = []
    for _ in range(40):
        sample = [votes[k] for k in draw.integers(0, len(votes), len(votes))]
        ref = reference_strengths(sample, 1.0, ["x", "y", "z"])
        elos.append([1000 + 400 * math.log10(ref[s]) for s in "xyz"])
    lo, hi = np.percentile(np.array(elos), [2.5, 97.5], axis=0)
    for k, s in enumerate("xyz"):
        assert r.low[s] == pytest.approx(lo[k], abs=1e-3)
        assert r.high[s] == pytest.approx(hi[k], abs=1e-3)
        assert r.low[s] <= r.elo[s] <= r.high[s]
    assert (r.resamples, r.skipped) == (40, 0)


def test_win_rate_matrix_by_hand():
    votes = [vote("a", "b", "A"), vote("b", "a", "tie"), vote("a", "b", "B"), vote("b", "c", "A")]
    r = fit(votes, prior=1.0, resamples=0)
    w = win_rates(votes)
    assert w.sources == ("a", "b", "c")
    assert w.observed[0] == [None, 0.5, None]  # a vs b: 1 win + 1 tie of 3 -> 1.5 / 3
    assert w.observed[1] == [0.5, None, 1.0]
    assert w.counts == [[0, 3, 0], [3, 0, 1], [0, 1, 0]]
    wr = win_rates(votes, r)
    i, j = wr.sources.index("a"), wr.sources.index("c")
    assert wr.predicted[i][j] == pytest.approx(r.strength["a"] / (r.strength["a"] + r.strength["c"]))


@pytest.mark.parametrize(
    ("votes", "message"),
    [
        ([], "No votes yet"),
        ([vote("a", "b", "tie"), vote("b", "a", "both_bad")], "All 2 votes are ties or both bad"),
    ],
)
def test_bad_input_messages(votes, message):
    with pytest.raises(RatingError, match=message):
        fit(votes)


def test_one_source_unbounded_and_disconnected():
    with pytest.raises(RatingError, match="only 'a'"):
        fit([vote("a", "a", "A")])
    with pytest.raises(RatingError, match="a never lost a point.*prior > 0"):
        fit([vote("a", "b", "A"), vote("b", "a", "B")], prior=0)
    assert fit([vote("a", "b", "A"), vote("b", "a", "B")], prior=1.0, resamples=0).sources == ("a", "b")
    with pytest.raises(RatingError, match="c, d never met a"):
        fit([vote("a", "b", "A"), vote("c", "d", "A")])
