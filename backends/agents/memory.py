"""Conversation memory: what each strategy sends the model at every turn of a chat.

- full: the whole history, every turn (grows without bound);
- window: the last k exchanges only (cheap, forgets the start);
- summary: a running summary in the system message plus the last exchange. The summary here is
  extractive, not written by the model: the user's sentences that state something about
  themselves ("My name is ...", "I am ...") are kept word for word, so it is exact and instant
  (a 135M model's own summaries drop the facts more often than they keep them).

Token counts use the model's tokenizer over its chat template, as the model would receive them.
The shipped dialogue (assets/datasets/agent_dialogue.json) ends with a question that needs facts
from its first turn; `remembers` says whether what was sent still contains them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache

from backends.core.paths import ASSETS

STRATEGIES = ("full", "window", "summary")
DIALOGUE_FILE = ASSETS / "datasets" / "agent_dialogue.json"
SELF = re.compile(r"\b(my|i am|i'm|i have|i live|i work|i like|i plan)\b", re.IGNORECASE)


@cache
def shipped_dialogue() -> dict:
    return json.loads(DIALOGUE_FILE.read_text(encoding="utf-8"))


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def extractive_summary(turns: list[dict]) -> str:
    """The user's sentences about themselves, in order, word for word."""
    kept = [s for turn in turns for s in sentences(turn["user"]) if SELF.search(s)]
    return " ".join(kept)


def messages_for(strategy: str, history: list[dict], question: str, k: int = 2) -> list[dict]:
    """The messages a strategy sends for `question`, after `history` (turns of user + assistant)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown memory strategy {strategy!r}; use one of {', '.join(STRATEGIES)}.")
    if strategy == "window":
        kept, system = history[-k:] if k > 0 else [], None
    elif strategy == "summary":
        older, kept = history[:-1], history[-1:]
        summary = extractive_summary(older)
        system = f"What the user said earlier: {summary}" if summary else None
    else:
        kept, system = history, None
    out = [{"role": "system", "content": system}] if system else []
    for turn in kept:
        out += [{"role": "user", "content": turn["user"]}, {"role": "assistant", "content": turn["assistant"]}]
    return [*out, {"role": "user", "content": question}]


@dataclass(frozen=True)
class TurnCost:
    turn: int  # 1-based
    strategy: str
    tokens: int  # prompt tokens under the chat template
    messages: list[dict]
    remembers: bool  # every needed fact is in what was sent


def memory_table(tokenizer, dialogue: dict | None = None, k: int = 2) -> list[TurnCost]:
    """One row per turn and strategy: what is sent and its token count."""
    dialogue = dialogue or shipped_dialogue()
    turns, needs = dialogue["turns"], dialogue.get("needs", [])
    rows = []
    for i, turn in enumerate(turns):
        for strategy in STRATEGIES:
            msgs = messages_for(strategy, turns[:i], turn["user"], k)
            ids = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)["input_ids"]
            sent = " ".join(m["content"] for m in msgs)
            rows.append(TurnCost(i + 1, strategy, len(ids), msgs, all(n in sent for n in needs)))
    return rows
