"""What a guardrail check returns, and the shipped request sets the guardrails are measured on.

assets/datasets/trust/ holds three sets of requests (no answers): `unsafe_examples.json` (the
similarity filter's reference), `unsafe_heldout.json` (different unsafe requests, used only to
measure recall) and `benign.json` (harmless requests that look risky: the false-positive set).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache

from backends.core.paths import ASSETS

TRUST_DATA = ASSETS / "datasets" / "trust"
SETS = {"examples": "unsafe_examples.json", "heldout": "unsafe_heldout.json", "benign": "benign.json"}

FLAGGED, PASSED, UNAVAILABLE = "flagged", "pass", "unavailable"
VERDICTS = (FLAGGED, PASSED, UNAVAILABLE)
STAGES = ("input", "output")


@dataclass(frozen=True)
class GuardItem:
    id: str
    category: str
    text: str


@dataclass(frozen=True)
class CheckResult:
    """One check on one text: `verdict` (flagged / pass / unavailable), `score` (what the check measured:
    1.0 or 0.0 for a pattern, a cosine for similarity, a share of n-grams for a leak), `threshold` (the
    score from which it flags; None when the check has no scale), `detail` (in words: the pattern,
    the nearest example...) and `data` (the same as values, for a page to draw)."""

    name: str
    verdict: str
    score: float | None
    threshold: float | None
    detail: str
    data: dict = field(default_factory=dict, compare=False)

    @property
    def flagged(self) -> bool:
        return self.verdict == FLAGGED


@cache
def shipped_set(name: str) -> tuple[GuardItem, ...]:
    """'examples', 'heldout' or 'benign': the shipped requests, in file order."""
    if name not in SETS:
        raise ValueError(f"Unknown guard set {name!r}: one of {', '.join(SETS)}.")
    raw = json.loads((TRUST_DATA / SETS[name]).read_text(encoding="utf-8"))
    return tuple(GuardItem(r["id"], r["category"], r["text"]) for r in raw["items"])
