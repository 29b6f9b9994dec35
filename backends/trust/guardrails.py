"""Guardrails: input and output checks in front of a model, as a pipeline the learner can see.

`check(text, stage="input"|"output", system_prompt=None, prompt=None) -> GuardResult` runs every
check and keeps every result; the request is blocked when any check flags it, and `blocked_by`
names the first (the one that would stop it: checks run in the order below, cheapest first).

Input stage:  patterns (guard_patterns: regexes by category, encoded payloads), similarity
              (guard_similarity: MiniLM max cosine to the shipped unsafe examples), guard model
              (guard_model: optional, online and configured only).
Output stage: patterns, leak (the system prompt repeated in the answer, when one is given),
              guard model (on the prompt and the answer). The similarity filter compares requests
              with requests, so it does not run on answers.

`evaluate_guard() -> GuardReport`: the input pipeline on the benign set (false-positive rate,
`guard_fpr`, target <= 0.1) and on the held-out unsafe set (`recall`), per check and for the
pipeline, with the benign items flagged; memoized in this process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from backends.trust.guard_model import guard_model_id, model_check
from backends.trust.guard_patterns import leak_check, pattern_check
from backends.trust.guard_similarity import similarity_check, threshold_data
from backends.trust.guard_types import STAGES, UNAVAILABLE, CheckResult, GuardItem, shipped_set

# A conventional refusal; garak's refusal detector (mitigation.MitigationBypass) knows its wording, so a
# blocked reply is not counted as an attack that got through.
REFUSAL = "I'm sorry, but I can't help with that request."
INPUT_CHECKS = ("patterns", "similarity", "guard model")
OUTPUT_CHECKS = ("patterns", "leak", "guard model")


@dataclass(frozen=True)
class GuardResult:
    text: str
    stage: str
    checks: tuple[CheckResult, ...]

    @property
    def blocked(self) -> bool:
        return any(c.flagged for c in self.checks)

    @property
    def blocked_by(self) -> str | None:
        """The first check that flags (where the pipeline stops the request), or None."""
        return next((c.name for c in self.checks if c.flagged), None)

    def result(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)


def check(text: str, stage: str = "input", system_prompt: str | None = None, prompt: str | None = None) -> GuardResult:
    """Every check of `stage` on `text` (for the output stage: the answer; `system_prompt` for the
    leak check, `prompt` the request the answer replies to, for the guard model)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}.")
    if not isinstance(text, str):
        raise TypeError(f"The guardrails check text, not {type(text).__name__}.")
    checks = [pattern_check(text)]
    if stage == "input":
        checks.append(similarity_check(text))
    else:
        checks.append(leak_check(text, system_prompt))
    checks.append(model_check(text, stage, prompt))
    return GuardResult(text, stage, tuple(checks))


@dataclass(frozen=True)
class CheckRates:
    name: str
    fpr: float | None  # share of benign requests flagged; None when the check was unavailable
    recall: float | None  # share of held-out unsafe requests flagged


@dataclass(frozen=True)
class GuardReport:
    guard_fpr: float  # the pipeline's false-positive rate on the benign set
    recall: float  # the pipeline's recall on the held-out unsafe set
    per_check: tuple[CheckRates, ...]
    similarity_threshold: float
    n_benign: int
    n_heldout: int
    flagged_benign: tuple[tuple[GuardItem, str], ...]  # (item, first check that flagged it)
    missed_heldout: tuple[GuardItem, ...]
    recall_by_category: dict = field(default_factory=dict)

    def rates(self, name: str) -> CheckRates:
        return next(r for r in self.per_check if r.name == name)

    def bench(self) -> dict:
        """The keys bench/trust.py prints."""
        return {
            "guard_fpr": round(self.guard_fpr, 4),
            "guard_recall": round(self.recall, 4),
            "guard_similarity_threshold": round(self.similarity_threshold, 4),
        }


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _evaluate() -> GuardReport:
    benign, heldout = shipped_set("benign"), shipped_set("heldout")
    on_benign = [check(item.text) for item in benign]
    on_heldout = [check(item.text) for item in heldout]
    per_check = []
    for name in INPUT_CHECKS:
        b = [r.result(name) for r in on_benign]
        h = [r.result(name) for r in on_heldout]
        if all(c.verdict == UNAVAILABLE for c in b + h):
            per_check.append(CheckRates(name, None, None))
            continue
        per_check.append(CheckRates(name, _share([c.flagged for c in b]), _share([c.flagged for c in h])))
    per_check.append(
        CheckRates("pipeline", _share([r.blocked for r in on_benign]), _share([r.blocked for r in on_heldout]))
    )
    by_category: dict[str, list[bool]] = {}
    for item, r in zip(heldout, on_heldout):
        by_category.setdefault(item.category, []).append(r.blocked)
    return GuardReport(
        guard_fpr=per_check[-1].fpr,
        recall=per_check[-1].recall,
        per_check=tuple(per_check),
        similarity_threshold=threshold_data()["threshold"],
        n_benign=len(benign),
        n_heldout=len(heldout),
        flagged_benign=tuple((item, r.blocked_by) for item, r in zip(benign, on_benign) if r.blocked),
        missed_heldout=tuple(item for item, r in zip(heldout, on_heldout) if not r.blocked),
        recall_by_category={k: _share(v) for k, v in by_category.items()},
    )


_memo: dict[str | None, GuardReport] = {}
_memo_lock = threading.Lock()


def evaluate_guard() -> GuardReport:
    """The pipeline measured on the shipped sets (a few seconds the first time; memoized per guard model)."""
    key = guard_model_id()
    with _memo_lock:
        if key not in _memo:
            _memo[key] = _evaluate()
        return _memo[key]
