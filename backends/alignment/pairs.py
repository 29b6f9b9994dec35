"""Votes as preference pairs in TRL's format, and such a file read back with every line checked.

TRL 1.16's preference format (what DPOTrainer reads) has three keys per row, in one of two shapes:
- standard:       {"prompt": "text", "chosen": "text", "rejected": "text"}
- conversational: {"prompt": [{"role": "user", "content": ...}],
                   "chosen": [{"role": "assistant", "content": ...}],
                   "rejected": [{"role": "assistant", "content": ...}]}
The conversational shape lets the trainer apply the model's chat template; it is the default here
since the arena's answers come from chat models.

Only A or B verdicts make a pair: a tie or a "both bad" says neither answer is better, so it has no
chosen and rejected side and is left out (counted in `Export.skipped`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from backends.alignment.store import Vote

KEYS = ("prompt", "chosen", "rejected")


class PairsError(ValueError):
    """A preference file that cannot be used; the message names every bad line."""


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str

    def row(self, conversational: bool = True) -> dict:
        if not conversational:
            return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}
        return {
            "prompt": [{"role": "user", "content": self.prompt}],
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
        }


@dataclass(frozen=True)
class Export:
    pairs: tuple[Pair, ...]
    skipped: dict[str, int]  # verdict -> votes left out (tie, both_bad)

    def jsonl(self, conversational: bool = True) -> str:
        return "".join(json.dumps(p.row(conversational), ensure_ascii=False) + "\n" for p in self.pairs)


def votes_to_pairs(votes: Iterable[Vote], prompts: Sequence[str]) -> Export:
    """One pair per A/B vote (the winner's answer chosen); ties and both-bad votes are counted, not kept."""
    pairs, skipped = [], Counter()
    for v in votes:
        if v.verdict == "A":
            pairs.append(Pair(prompts[v.prompt_id], v.answer_a, v.answer_b))
        elif v.verdict == "B":
            pairs.append(Pair(prompts[v.prompt_id], v.answer_b, v.answer_a))
        else:
            skipped[v.verdict] += 1
    return Export(tuple(pairs), {"tie": skipped["tie"], "both_bad": skipped["both_bad"]})


def _text_of(value, key: str, role: str) -> str:
    """A field's text, from either shape; raises ValueError with what is wrong."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        if len(value) != 1 or not isinstance(value[0], dict):
            raise ValueError(f'"{key}" must be a text or a list of one {{"role", "content"}} message')
        msg = value[0]
        if msg.get("role") != role:
            raise ValueError(f'"{key}" must be a message with role "{role}", got {msg.get("role")!r}')
        text = msg.get("content")
        if not isinstance(text, str):
            raise ValueError(f'"{key}" message has no text "content"')
    else:
        raise ValueError(f'"{key}" must be a text or a list of messages, got {type(value).__name__}')
    if not text.strip():
        raise ValueError(f'"{key}" is empty')
    return text


def parse_jsonl(text: str, max_errors: int = 20) -> list[Pair]:
    """Pairs from a TRL preference JSONL (either shape; blank lines skipped).

    Every line is checked before anything is returned: a file with bad lines raises one PairsError
    naming each of them (the first `max_errors`), so a half-read file is never used.
    """
    pairs, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: not valid JSON ({exc.msg}, column {exc.colno})")
            continue
        if not isinstance(row, dict):
            errors.append(f"line {number}: expected a JSON object with {', '.join(KEYS)}")
            continue
        missing = [k for k in KEYS if k not in row]
        if missing:
            errors.append(f"line {number}: missing {', '.join(missing)}")
            continue
        shapes = {isinstance(row[k], str) for k in KEYS}
        if len(shapes) > 1:
            errors.append(f"line {number}: mixes plain text and messages; use one shape for all three keys")
            continue
        try:
            prompt = _text_of(row["prompt"], "prompt", "user")
            chosen = _text_of(row["chosen"], "chosen", "assistant")
            rejected = _text_of(row["rejected"], "rejected", "assistant")
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
            continue
        if chosen == rejected:
            errors.append(f"line {number}: chosen and rejected are the same answer")
            continue
        pairs.append(Pair(prompt, chosen, rejected))
    if errors:
        more = f" (and {len(errors) - max_errors} more)" if len(errors) > max_errors else ""
        raise PairsError(f"{len(errors)} bad line(s){more}:\n" + "\n".join(errors[:max_errors]))
    if not pairs:
        raise PairsError("The file holds no preference pairs.")
    return pairs
