"""How well each score tells wrong answers from right ones, over the shipped questions.

Every question is answered and checked (`selfcheck_question`: greedy answer, N samples, sentence
scores), and the greedy answer is graded from its words (`grade`: right / wrong / abstained).

What is scored: the ANSWER. The grade belongs to the whole answer, and nothing says which of its
sentences holds the false claim (an answer often restates the question first, a true sentence), so
labelling every sentence with its answer's grade would call true sentences wrong. An answer's score is
that of its most doubtful sentence (the max over its sentences: a made-up claim anywhere should flag
the answer); most answers are one or two sentences. Labels: wrong = 1, right = 0; abstained answers
withhold the fact and are neither, so they are left out of the AUCs (they are counted). The
sentence-level AUC (every sentence takes its answer's label) is computed too, for comparison.

The main figure, `selfcheck_auc`, is the MiniLM score's AUC: the issue's first offline scorer, and the
one that reads meaning (a paraphrase of the same fact still agrees), where the unigram score only
counts shared words. Both were chosen before measuring. The unigram and entropy AUCs are reported too.
The full set's report is memoized in process by its settings (8 kept), so a class shares one run.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from backends.core.memo import SingleFlightLRU
from backends.core.shared import process_wide
from backends.trust.questions import Question, grade, shipped_questions
from backends.trust.roc import RocCurve, roc_auc, roc_curve
from backends.trust.selfcheck_run import N_SAMPLES, SentenceScores, current_ctx, selfcheck_question, with_ctx

SCORERS = ("minilm", "ngram", "entropy")
GRADES = ("right", "wrong", "abstained")
REPORTS_KEPT = 8


@dataclass(frozen=True)
class DetectRow:
    id: str
    kind: str
    question: str
    answer: str
    grade: str
    scores: dict  # scorer -> the answer's score (max over its sentences)
    sentences: tuple[SentenceScores, ...]
    samples: tuple[str, ...]


@dataclass(frozen=True)
class DetectReport:
    rows: tuple[DetectRow, ...]
    n_samples: int
    seed: int
    seconds: float
    aucs: dict = field(default_factory=dict)  # scorer -> answer-level AUC (None: one class missing)
    sentence_aucs: dict = field(default_factory=dict)  # scorer -> AUC with every sentence labelled
    curves: dict = field(default_factory=dict)  # scorer -> RocCurve (answer level)

    @property
    def selfcheck_auc(self) -> float | None:
        return self.aucs.get("minilm")

    @property
    def ngram_auc(self) -> float | None:
        return self.aucs.get("ngram")

    @property
    def entropy_auc(self) -> float | None:
        return self.aucs.get("entropy")

    @property
    def counts(self) -> dict:
        found = Counter(r.grade for r in self.rows)
        return {g: found.get(g, 0) for g in GRADES}

    def bench_keys(self) -> dict:
        """The figures bench/trust.py prints (AUCs rounded to 3 places; None when undefined)."""
        r3 = lambda x: None if x is None else round(x, 3)  # noqa: E731
        return {
            "selfcheck_auc": r3(self.selfcheck_auc),
            "selfcheck_ngram_auc": r3(self.ngram_auc),
            "entropy_auc": r3(self.entropy_auc),
            "selfcheck_sentence_auc": r3(self.sentence_aucs.get("minilm")),
            "entropy_sentence_auc": r3(self.sentence_aucs.get("entropy")),
            "detect_right": self.counts["right"],
            "detect_wrong": self.counts["wrong"],
            "detect_abstained": self.counts["abstained"],
            "detect_s": round(self.seconds, 1),
        }


class _Scaled:
    """A job context whose progress fractions land in [lo, hi] of the caller's (one question of many)."""

    def __init__(self, ctx, lo: float, hi: float):
        self._ctx, self._lo, self._hi = ctx, lo, hi

    @property
    def stopped(self) -> bool:
        return self._ctx.stopped

    def check_stop(self) -> None:
        self._ctx.check_stop()

    def report(self, progress=None, message="", **data) -> None:
        at = None if progress is None else self._lo + (self._hi - self._lo) * progress
        self._ctx.report(at, message, **data)


def _aucs(rows, per_sentence: bool) -> tuple[dict, dict]:
    aucs, curves = {}, {}
    for scorer in SCORERS:
        labels, scores = [], []
        for r in rows:
            if r.grade == "abstained":
                continue
            label = 1 if r.grade == "wrong" else 0
            if per_sentence:
                for s in r.sentences:
                    labels.append(label)
                    scores.append(getattr(s, scorer))
            else:
                labels.append(label)
                scores.append(r.scores[scorer])
        if 0 < sum(labels) < len(labels):
            curves[scorer] = roc_curve(labels, scores)
            aucs[scorer] = roc_auc(labels, scores)
        else:
            aucs[scorer] = None
    return aucs, curves


def _evaluate(questions: tuple[Question, ...], n_samples: int, seed: int, ctx) -> DetectReport:
    began = time.perf_counter()
    rows = []
    for i, q in enumerate(questions):
        if ctx is not None:
            ctx.check_stop()
        part = None if ctx is None else _Scaled(ctx, i / len(questions), (i + 1) / len(questions))
        check = selfcheck_question(q.question, n_samples, seed, ctx=part)
        verdict = grade(q, check.answer)
        row = DetectRow(
            q.id,
            q.kind,
            q.question,
            check.answer,
            verdict,
            {s: check.answer_score(s) for s in SCORERS},
            check.sentences,
            check.samples,
        )
        rows.append(row)
        if ctx is not None:
            ctx.report(
                (i + 1) / len(questions), f"{q.id}: {verdict}", kind="row", id=q.id, grade=verdict, **row.scores
            )
    aucs, curves = _aucs(rows, per_sentence=False)
    sentence_aucs, _ = _aucs(rows, per_sentence=True)
    return DetectReport(tuple(rows), n_samples, seed, time.perf_counter() - began, aucs, sentence_aucs, curves)


def _load(key) -> DetectReport:
    questions, n_samples, seed = key
    return _evaluate(questions, n_samples, seed, current_ctx())


_reports = process_wide(lambda: SingleFlightLRU(_load, budget=lambda group: REPORTS_KEPT))


def evaluate_detect(ctx=None, n_samples: int = N_SAMPLES, questions=None, seed: int = 0) -> DetectReport:
    """Answer, check and grade every question (default: the 50 shipped ones); the three scores' AUCs.

    Memoized in process by (questions, n_samples, seed). `ctx` (a job's context, or None) gets
    progress, one kind="row" event per question, and stops the run (nothing is remembered then)."""
    questions = tuple(shipped_questions() if questions is None else questions)
    if not questions:
        raise ValueError("No questions to evaluate.")
    return with_ctx(ctx, lambda: _reports().get((questions, int(n_samples), int(seed))))


def cached_detect(n_samples: int = N_SAMPLES, seed: int = 0, questions=None) -> DetectReport | None:
    """The memoized report for these settings when this process has one already (no work done)."""
    key = (tuple(shipped_questions() if questions is None else questions), int(n_samples), int(seed))
    return dict(_reports().items()).get(key)  # a look only: never starts a run


def detect_job(ctx, n_samples: int = N_SAMPLES, seed: int = 0) -> DetectReport:
    """The page's whole-set job."""
    return evaluate_detect(ctx, n_samples, None, seed)


def curve_points(curve: RocCurve) -> list[dict]:
    return [
        {"fpr": f, "tpr": t, "threshold": h} for f, t, h in zip(curve.fpr, curve.tpr, curve.thresholds, strict=True)
    ]
