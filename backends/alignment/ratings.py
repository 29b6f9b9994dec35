"""Bradley-Terry ratings from the arena's pairwise votes.

Model: source i beats source j with probability p_i / (p_i + p_j). A tie (and a "both bad": neither
was preferred) counts as half a win for each side, as the Chatbot Arena leaderboard does. Why not
a tie model with its own parameter (Rao-Kupper, Davidson)? With half wins the fit stays the plain
Bradley-Terry maximum likelihood that students can check by hand (two sources: p_A / (p_A + p_B) is
A's share of the points), with one number per source; the price is that many ties pull strengths
together rather than being modelled.

Fitted by the MM algorithm (Hunter 2004): p_i <- W_i / sum_j n_ij / (p_i + p_j), with W_i the
points of i and n_ij the votes between i and j, rescaled to geometric mean 1 after each step. The
maximum exists only when every source both won and lost points against the others (the "who beat
whom" graph is strongly connected); with few classroom votes that often fails, so `prior` adds a
virtual tie between every pair of sources that were compared (0 turns it off).

Scores are shown on the Elo-like scale of the arena leaderboards: 1000 + 400 * log10(p_i).
Intervals: a seeded bootstrap over votes (resample the votes with replacement, refit, percentiles).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from backends.alignment.store import Vote

ELO_BASE, ELO_SCALE = 1000.0, 400.0 / math.log(10)


class RatingError(ValueError):
    """Votes the ratings cannot be fitted to; the message says why."""


@dataclass(frozen=True)
class Ratings:
    sources: tuple[str, ...]  # best first
    strength: dict[str, float]  # p_i, geometric mean 1
    elo: dict[str, float]  # 1000 + 400 log10 p_i
    low: dict[str, float]  # bootstrap interval on the elo scale
    high: dict[str, float]
    level: float
    resamples: int  # bootstrap fits used (a resample with no maximum is skipped)
    skipped: int
    votes: int  # votes used (A, B, tie, both_bad between two sources)
    iterations: int


def outcomes(votes: Iterable[Vote]) -> list[tuple[str, str, float]]:
    """(source a, source b, points of a): 1 if A won, 0 if B won, 0.5 for a tie or both bad."""
    points = {"A": 1.0, "B": 0.0, "tie": 0.5, "both_bad": 0.5}
    return [(v.source_a, v.source_b, points[v.verdict]) for v in votes]


def tallies(rows: list[tuple[str, str, float]], sources: list[str], prior: float = 0.0):
    """(W, N): W[i, j] points of i against j, N[i, j] votes between them (+ `prior` virtual ties)."""
    index = {s: k for k, s in enumerate(sources)}
    n = len(sources)
    wins, games = np.zeros((n, n)), np.zeros((n, n))
    for a, b, pa in rows:
        i, j = index[a], index[b]
        wins[i, j] += pa
        wins[j, i] += 1.0 - pa
        games[i, j] += 1.0
        games[j, i] += 1.0
    if prior > 0:
        compared = games > 0
        wins += 0.5 * prior * compared
        games += prior * compared
    return wins, games


def _check(wins: np.ndarray, games: np.ndarray, sources: list[str]) -> None:
    """The MLE exists iff the graph i -> j (i took points from j) is strongly connected."""

    def reach(adj):
        seen, todo = {0}, [0]
        while todo:
            k = todo.pop()
            for m in np.flatnonzero(adj[k]):
                if int(m) not in seen:
                    seen.add(int(m))
                    todo.append(int(m))
        return seen

    compared = reach(games > 0)
    if len(compared) < len(sources):
        apart = [s for k, s in enumerate(sources) if k not in compared]
        raise RatingError(
            f"{', '.join(apart)} never met {sources[0]}, directly or through other sources: "
            "their scores cannot be put on one scale. Add votes that compare them."
        )
    beat, lost = reach(wins > 0), reach(wins.T > 0)
    if len(beat) < len(sources) or len(lost) < len(sources):
        never_lost = [s for k, s in enumerate(sources) if wins[:, k].sum() == 0]
        never_won = [s for k, s in enumerate(sources) if wins[k].sum() == 0]
        if never_lost:
            who = f"{', '.join(never_lost)} never lost a point"
        elif never_won:
            who = f"{', '.join(never_won)} never won a point"
        else:
            who = "one group of sources took every point against the rest"
        raise RatingError(
            f"{who}: its score would be infinite. Add votes, or use prior > 0 (virtual ties between compared sources)."
        )


def fit_strengths(
    wins: np.ndarray, games: np.ndarray, tol: float = 1e-10, max_iter: int = 100_000
) -> tuple[np.ndarray, int]:
    """MM iterations; p with geometric mean 1, and the number of iterations."""
    points = wins.sum(axis=1)
    p = np.ones(len(points))
    for it in range(1, max_iter + 1):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = points / denom
        new /= np.exp(np.mean(np.log(new)))
        if np.max(np.abs(np.log(new) - np.log(p))) < tol:
            return new, it
        p = new
    return p, max_iter


def _sources(rows) -> list[str]:
    return sorted({s for a, b, _ in rows for s in (a, b)})


def _validate(rows) -> list[str]:
    if not rows:
        raise RatingError("No votes yet: ratings need at least one vote between two sources.")
    sources = _sources(rows)
    if len(sources) < 2:
        raise RatingError(f"Every vote shows only {sources[0]!r}: ratings compare at least two sources.")
    if all(pa == 0.5 for _, _, pa in rows):
        raise RatingError(
            f"All {len(rows)} votes are ties or both bad: no vote prefers one source, so there is nothing to rank."
        )
    return sources


def fit(
    votes: Iterable[Vote], prior: float = 1.0, resamples: int = 200, level: float = 0.95, seed: int = 0
) -> Ratings:
    """Strengths, Elo-scale scores and bootstrap intervals from a set's votes."""
    rows = outcomes(votes)
    sources = _validate(rows)
    wins, games = tallies(rows, sources, prior)
    _check(wins, games, sources)
    p, iterations = fit_strengths(wins, games)
    elo = ELO_BASE + ELO_SCALE * np.log(p)
    rng = np.random.default_rng(seed)
    samples, skipped = [], 0
    for _ in range(resamples):
        pick = rng.integers(0, len(rows), len(rows))
        w, g = tallies([rows[k] for k in pick], sources, prior)
        try:
            _check(w, g, sources)
        except RatingError:
            skipped += 1
            continue
        samples.append(ELO_BASE + ELO_SCALE * np.log(fit_strengths(w, g, tol=1e-8)[0]))
    if samples:
        lo, hi = np.percentile(np.array(samples), [50 * (1 - level), 50 * (1 + level)], axis=0)
    else:
        lo = hi = np.full(len(sources), np.nan)
    order = sorted(range(len(sources)), key=lambda k: -p[k])
    return Ratings(
        tuple(sources[k] for k in order),
        {s: float(p[k]) for k, s in enumerate(sources)},
        {s: float(elo[k]) for k, s in enumerate(sources)},
        {s: float(lo[k]) for k, s in enumerate(sources)},
        {s: float(hi[k]) for k, s in enumerate(sources)},
        level,
        len(samples),
        skipped,
        len(rows),
        iterations,
    )


@dataclass(frozen=True)
class WinRates:
    sources: tuple[str, ...]
    observed: list[list[float | None]]  # points of row against column / votes; None if never compared
    counts: list[list[int]]
    predicted: list[list[float]] | None  # p_i / (p_i + p_j) from fitted strengths, when given


def win_rates(votes: Iterable[Vote], ratings: Ratings | None = None) -> WinRates:
    """The observed win-rate matrix (ties half), and the model's prediction beside it."""
    rows = outcomes(votes)
    sources = list(ratings.sources) if ratings else _sources(rows)
    if not rows:
        raise RatingError("No votes yet: there is no win rate to show.")
    wins, games = tallies(rows, sources)
    observed = [
        [None if i == j or games[i, j] == 0 else float(wins[i, j] / games[i, j]) for j in range(len(sources))]
        for i in range(len(sources))
    ]
    predicted = None
    if ratings:
        p = np.array([ratings.strength[s] for s in sources])
        predicted = (p[:, None] / (p[:, None] + p[None, :])).tolist()
    return WinRates(tuple(sources), observed, games.astype(int).tolist(), predicted)
