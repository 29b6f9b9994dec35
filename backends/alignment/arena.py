"""The preference arena's moving parts: answer sources, blind matches, one answer per source, and the
checks a page makes before asking for ratings.

A *source* is what wrote an answer: the base model, one of the session's adapters, or a model on a
remote OpenAI-compatible engine, each at a temperature (0 = greedy). Its `id` is the readable text
stored in every vote ("base · T=0.7", "dpo · greedy"), so ratings and exports name sources the same
way in every session.

A *match* puts two different sources in a random order as answers "A" and "B": the voter does not
know which is which until the vote is in. Its vote id is made once, so the same match voted twice
(a double click, a retried request) is stored once (`PreferenceStore.add_vote`).

In-process answers go through `rule.generate_answers` (the alignment package's one token loop:
chat template with the generation prompt, greedy or sampling from a seeded generator, one compute
turn per forward pass, no gradients, the model's train/eval mode restored, nothing changed on the
shared model).

Also here: `shipped_prompts` (a new set's default prompts), `personal_set` (a self-learner's own set,
made on the first vote and grown by typed prompts), `rating_problem` (why a set cannot be rated yet,
as a code a page words in its language), `shared_store` (the process's store on the default file)
and `ratings` (`ratings.fit`, memoised process-wide: one fit per set state, not one per session).
"""

from __future__ import annotations

import math
import random
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from backends.alignment.ratings import Ratings, fit, outcomes
from backends.alignment.rule import generate_answers, heldout_prompts
from backends.alignment.store import ClassSet, PreferenceStore, Vote, default_path
from backends.core.coded import CodedError
from backends.core.memo import SingleFlightLRU
from backends.core.shared import process_wide

KINDS = ("base", "adapter", "remote")
MAX_TEMPERATURE = 2.0
RESAMPLES = 200  # bootstrap refits behind each interval
FITS_KEPT = 64  # ratings remembered process-wide (one per set state a page asked about)
# Used when the shipped held-out prompts are not there (a checkout without assets/datasets).
FALLBACK_PROMPTS = (
    "What is the capital of France?",
    "Give me one tip for sleeping better.",
    "Why is the sky blue?",
    "How do I boil an egg?",
    "What does a CPU do?",
    "Name three fruits that are red.",
    "What is photosynthesis?",
    "How many legs does a spider have?",
)


class ArenaError(CodedError, ValueError):
    """A source or match the arena refuses (codes: bad_kind, no_name, bad_temperature, same_source,
    empty_prompt); the English message says what to change."""


@dataclass(frozen=True)
class Source:
    kind: str  # "base", "adapter" or "remote"
    name: str = "base"  # adapter name ("sft", "dpo") or the remote model id; "base" for the base model
    temperature: float = 0.0  # 0 = greedy

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ArenaError(f"Unknown source kind {self.kind!r}; expected one of {', '.join(KINDS)}.", "bad_kind")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ArenaError(f"A {self.kind} source needs a name, got {self.name!r}.", "no_name")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise ArenaError(f"temperature={t!r} is not a number.", "bad_temperature", value=repr(t))
        if not 0 <= t <= MAX_TEMPERATURE:
            raise ArenaError(
                f"temperature={t!r} is out of range: use 0 (greedy) to {MAX_TEMPERATURE:g}.",
                "bad_temperature",
                value=repr(t),
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def who(self) -> str:
        if self.kind == "remote":
            return f"remote {self.name.strip()}"
        return "base" if self.kind == "base" else self.name.strip()

    @property
    def id(self) -> str:
        """What votes store: who wrote the answer, and how it was decoded."""
        return f"{self.who} · " + ("greedy" if self.greedy else f"T={float(self.temperature):g}")


@dataclass(frozen=True)
class Match:
    prompt_id: int
    source_a: Source
    source_b: Source
    seed: int  # for sampled answers; both sides draw from a generator seeded with it
    vote_id: str  # made once per match: voting it again stores nothing new

    def source(self, side: str) -> Source:
        return self.source_a if side == "A" else self.source_b


def match(prompt_id: int, sources: Sequence[Source], rng: random.Random) -> Match:
    """Two distinct sources in a random order (A, B), with a seed for sampling and a fresh vote id."""
    if len(sources) != 2:
        raise ArenaError(f"A match compares two sources, got {len(sources)}.", "same_source", source="")
    first, second = sources
    if first.id == second.id:
        raise ArenaError(
            f"Both sides would be {first.id!r}: pick two different sources or temperatures.",
            "same_source",
            source=first.id,
        )
    a, b = (first, second) if rng.random() < 0.5 else (second, first)
    return Match(int(prompt_id), a, b, rng.randrange(2**31), uuid.uuid4().hex)


def _prompt(prompt: str) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ArenaError(f"The prompt is empty ({prompt!r}): type a question.", "empty_prompt")
    return prompt


def answer(model, tokenizer, prompt: str, temperature: float, seed: int, max_new_tokens: int = 64) -> str:
    """One answer from an in-process model (the shared base model or a peft adapter copy)."""
    got = generate_answers(
        model,
        tokenizer,
        [_prompt(prompt)],
        max_new_tokens=int(max_new_tokens),
        batch_size=1,
        temperature=float(temperature),
        seed=int(seed),
    )
    return got[0].text


def remote_answer(engine, prompt: str, temperature: float, seed: int, max_new_tokens: int = 64) -> str:
    """One answer from a remote engine (`backends.serving.RemoteEngine` or anything with its `chat`)."""
    sampled = float(temperature) > 0
    return engine.chat(
        [{"role": "user", "content": _prompt(prompt)}],
        max_tokens=int(max_new_tokens),
        temperature=float(temperature),
        seed=int(seed) if sampled else None,
    ).strip()


def shipped_prompts() -> list[str]:
    """The prompts a new set starts from: the held-out prompts of the brevity rule, else a short list."""
    try:
        found = [p for p in heldout_prompts() if isinstance(p, str) and p.strip()]
    except (OSError, ValueError):
        found = []
    return found or list(FALLBACK_PROMPTS)


def personal_set(store: PreferenceStore, code: str | None, prompt: str, prompts: Sequence[str]) -> ClassSet:
    """This learner's own set, holding `prompt`: created on the first vote (with `prompts` and
    `prompt`), or, when `prompt` is new to it, copied into a new set with the prompt added.

    The store never changes a set's prompts, so a grown set is a new set: every vote of the old one
    is copied (same content, a vote id derived from the old one, so a retried copy stores nothing
    twice); the old set stays as it was.
    """
    prompt = _prompt(prompt)
    if code is None:
        return store.create_set([*dict.fromkeys([*prompts, prompt])], "personal")
    old = store.open_set(code)
    if prompt in old.prompts:
        return old
    new = store.create_set([*old.prompts, prompt], old.title)
    for v in store.votes(old.code):
        store.add_vote(
            new.code,
            v.voter,
            v.prompt_id,
            v.source_a,
            v.source_b,
            v.answer_a,
            v.answer_b,
            v.verdict,
            vote_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{v.vote_id}/{new.code}").hex,
        )
    return new


def rating_problem(votes: Sequence[Vote], prior: float) -> tuple[str, dict] | None:
    """Why `ratings.fit(votes, prior)` has nothing to fit, as (code, values), or None when it can fit.

    Codes: "no_votes"; "only_ties" (n); "one_source" (source); "apart" (sources: groups of sources
    that never met); with prior 0 only: "never_lost" / "never_won" (sources), "one_sided" (a group
    took every point from the rest). With prior > 0 each compared pair gets a virtual tie, so a
    connected set of sources always fits.
    """
    rows = outcomes(votes)
    if not rows:
        return "no_votes", {}
    sources = sorted({s for a, b, _ in rows for s in (a, b)})
    if len(sources) < 2:
        return "one_source", {"source": sources[0]}
    if all(pa == 0.5 for _, _, pa in rows):
        return "only_ties", {"n": len(rows)}
    met = {s: set() for s in sources}
    took = {s: set() for s in sources}  # took[x]: sources x took points from
    for a, b, pa in rows:
        met[a].add(b)
        met[b].add(a)
        if pa > 0:
            took[a].add(b)
        if pa < 1:
            took[b].add(a)
    if len(_reach(sources[0], met)) < len(sources):
        apart = [s for s in sources if s not in _reach(sources[0], met)]
        return "apart", {"sources": ", ".join(apart), "first": sources[0]}
    if prior > 0:
        return None
    gave = {s: {x for x in sources if s in took[x]} for s in sources}
    never_lost = [s for s in sources if not gave[s]]
    never_won = [s for s in sources if not took[s]]
    if never_lost:
        return "never_lost", {"sources": ", ".join(never_lost)}
    if never_won:
        return "never_won", {"sources": ", ".join(never_won)}
    if len(_reach(sources[0], took)) < len(sources) or len(_reach(sources[0], gave)) < len(sources):
        return "one_sided", {}
    return None


def _reach(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


_stores: dict[str, PreferenceStore] = {}
_stores_lock = threading.Lock()


def shared_store() -> PreferenceStore:
    """The process's store on the default file (every session reads and writes the same one); built
    once per path, so a page run does not open a schema transaction each time."""
    path = str(default_path())
    with _stores_lock:
        if path not in _stores:
            _stores[path] = PreferenceStore(path)
        return _stores[path]


def _fit_outcomes(key: tuple) -> Ratings:
    rows, prior = key
    votes = [Vote("", "", "", 0, a, b, "", "", verdict, 0.0) for a, b, verdict in rows]
    return fit(votes, prior=prior, resamples=RESAMPLES)


def _fits() -> SingleFlightLRU:
    return SingleFlightLRU(_fit_outcomes, budget=lambda group: FITS_KEPT)


shared_fits = process_wide(_fits)


def ratings(votes: Sequence[Vote], prior: float = 1.0) -> Ratings:
    """`ratings.fit(votes, prior)` (bootstrap of RESAMPLES), computed once per process for the same
    votes: thirty sessions showing one class set after each new vote fit it once, not thirty times."""
    key = (tuple((v.source_a, v.source_b, v.verdict) for v in votes), float(prior))
    return shared_fits().get(key)
