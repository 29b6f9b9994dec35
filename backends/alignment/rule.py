"""The brevity rule: a preference anyone can check, so learners see alignment happen without a judge.

An answer follows the rule when the model stops by itself (emits its end-of-turn token) with at
least one and at most MAX_WORDS whitespace-separated words. SmolLM2-135M-Instruct's greedy
answers run to 50-70 words and are often cut at the token limit, so the base model rarely
follows it; a DPO run on `shipped_pairs()` (chosen = the model's own answer cut after a complete
sentence within MAX_WORDS words, rejected = the same answer going on) should raise the share of
held-out prompts answered by the rule.

Why it is a fair target: the check is two facts a learner can verify by eye (did it stop, how many
words), the rule is one a base model can already meet sometimes, and the chosen answers are the
model's own words, so DPO teaches when to stop rather than new facts or a new style. The empty
answer does not count: stopping at once is not an answer.

`generate_answers` runs a batched token loop (left padding, a KV cache): each forward pass takes
its own turn on the shared compute scheduler, so classroom sessions interleave step by step, and
it works on the shared cached model (nothing is changed on it) and on a peft LoRA copy alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from backends.alignment.pairs import Pair, parse_jsonl
from backends.core.paths import ASSETS
from backends.core.scheduler import shared_scheduler

MAX_WORDS = 25
SHIPPED_PAIRS = ASSETS / "datasets" / "brevity_preferences.jsonl"
HELDOUT_PROMPTS = ASSETS / "datasets" / "brevity_heldout_prompts.json"


def word_count(text: str) -> int:
    return len(text.split())


def follows_rule(text: str, stopped: bool) -> bool:
    """Stopped by itself, with 1 to MAX_WORDS words."""
    return stopped and 1 <= word_count(text) <= MAX_WORDS


def shipped_pairs() -> list[Pair]:
    return parse_jsonl(SHIPPED_PAIRS.read_text(encoding="utf-8"))


def heldout_prompts() -> list[str]:
    import json

    return list(json.loads(HELDOUT_PROMPTS.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Answer:
    prompt: str
    text: str  # decoded without special tokens, stripped
    stopped: bool  # the model emitted its end-of-turn token within the token budget
    n_tokens: int  # tokens generated, the end-of-turn token included when it stopped

    @property
    def follows(self) -> bool:
        return follows_rule(self.text, self.stopped)


@dataclass(frozen=True)
class RuleReport:
    answers: tuple[Answer, ...]
    rate: float  # share of answers that follow the rule


def _left_padded(tokenizer, prompts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Chat-template ids of each prompt, padded on the left by hand (the shared tokenizer is not touched)."""
    rows = []
    for prompt in prompts:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        rows.append(list(ids))
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    return ids, mask


def _batch(model, tokenizer, prompts, max_new_tokens, temperature, generator) -> list[Answer]:
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    ids, mask = _left_padded(tokenizer, prompts, device)
    # Positions count real tokens only, so a padded prompt sees the same positions as an unpadded one.
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    step_ids, cache = ids, None
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    new = []
    for _ in range(max_new_tokens):
        with shared_scheduler().turn("alignment"):  # one forward pass: sessions take turns step by step
            out = model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        cache, logits = out.past_key_values, out.logits[:, -1].float()
        if temperature > 0:
            token = torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator)[:, 0]
        else:
            token = logits.argmax(-1)
        token = token.masked_fill(done, eos)  # a finished row only pads
        new.append(token)
        done = done | (token == eos)
        if bool(done.all()):
            break
        step_ids = token[:, None]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        positions = positions[:, -1:] + 1
    tokens = torch.stack(new, dim=1).tolist()
    answers = []
    for prompt, row in zip(prompts, tokens):
        stopped = eos in row
        kept = row[: row.index(eos)] if stopped else row
        text = tokenizer.decode(kept, skip_special_tokens=True).strip()
        answers.append(Answer(prompt, text, stopped, len(kept) + int(stopped)))
    return answers


def generate_answers(
    model, tokenizer, prompts, max_new_tokens: int = 48, batch_size: int = 16, temperature: float = 0.0, seed: int = 0
) -> list[Answer]:
    """One answer per prompt (in order): greedy, or sampled at `temperature` from a generator seeded
    with `seed` (the global RNG is not used). Works on a transformers causal LM or a peft PeftModel."""
    prompts = list(prompts)
    if max_new_tokens < 1 or batch_size < 1 or temperature < 0:
        raise ValueError(
            f"max_new_tokens and batch_size must be >= 1 and temperature >= 0, got "
            f"{max_new_tokens}, {batch_size}, {temperature}."
        )
    if tokenizer.eos_token_id is None:
        raise ValueError(f"the tokenizer {type(tokenizer).__name__} has no eos token: the rule needs one.")
    generator = None
    if temperature > 0:
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    was_training = model.training
    if was_training:  # only a private copy is ever in training mode: the shared model is left as it is
        model.eval()
    try:
        with torch.no_grad():
            answers = []
            for start in range(0, len(prompts), batch_size):
                chunk = prompts[start : start + batch_size]
                answers += _batch(model, tokenizer, chunk, max_new_tokens, temperature, generator)
            return answers
    finally:
        if was_training:
            model.train()


def rule_win_rate(model, tokenizer, prompts=None, max_new_tokens: int = 48, batch_size: int = 16) -> RuleReport:
    """Greedy answers to `prompts` (default: the 60 held-out prompts) and the share that follow the rule."""
    prompts = heldout_prompts() if prompts is None else list(prompts)
    if not prompts:
        raise ValueError("rule_win_rate needs at least one prompt.")
    answers = tuple(generate_answers(model, tokenizer, prompts, max_new_tokens, batch_size))
    return RuleReport(answers, sum(a.follows for a in answers) / len(answers))
