"""Greedy speculative decoding by hand, one verify step at a time, on a KV cache.

A *proposer* guesses the next few tokens cheaply; the model checks all of them in ONE forward pass
(the last token + the guesses), keeps the longest prefix it agrees with, and adds its own next token
(the argmax after that prefix), so every step yields at least one token and the output is exactly
plain greedy decoding's. The KV entries of the rejected guesses are cut off (`DynamicCache.crop`).

Two proposers:
  `PromptLookup`  no draft model: find the last n-gram of prompt + output earlier in the text and
                  propose the tokens that followed it (prompt lookup decoding)
  `DraftProposer` a small draft model sharing the tokenizer guesses k tokens greedily, on its own
                  KV cache (assisted generation); spec_draft.py builds one from the model's layers

The plain greedy baseline is the same loop with no proposer (one token per forward pass).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from backends.core.scheduler import shared_scheduler
from backends.decoding import TextTracker, eos_ids, inference_steps, model_device, new_token_budget


@dataclass(frozen=True)
class SpecStep:
    """One verify step: the guesses, how many the model agreed with, the token it added itself."""

    index: int  # 0 = the prompt's forward pass (it gives the first token; nothing is proposed)
    proposed: list[int]  # the proposer's guesses, in order
    accepted: int  # how many of `proposed` the model agreed with (a prefix)
    own_token: int  # the model's own argmax after the accepted prefix (always kept)
    tokens: list[int]  # what this step added: proposed[:accepted] + [own_token], cut at EOS / the budget
    pieces: list[str]  # the text each of `tokens` adds ("" while a character's bytes are not all there)
    proposed_text: list[str]  # each guess decoded alone
    propose_s: float  # time the proposer took (a draft model's forward passes; ~0 for prompt lookup)
    verify_s: float  # time of the one forward pass that checked the guesses (+ argmax and cache crop)
    cache_len: int  # KV cache length after the step (prompt + output minus the last token)

    @property
    def rejected(self) -> list[int]:
        return self.proposed[self.accepted :]


@dataclass
class SpecRun:
    prompt_ids: list[int]
    steps: list[SpecStep] = field(default_factory=list)
    method: str = "greedy"
    k: int = 0
    threads: int = 0

    @property
    def tokens(self) -> list[int]:
        return [t for s in self.steps for t in s.tokens]

    @property
    def proposed(self) -> int:
        return sum(len(s.proposed) for s in self.steps)

    @property
    def accepted(self) -> int:
        return sum(s.accepted for s in self.steps)

    @property
    def accept_rate(self) -> float:
        """Accepted guesses / proposed guesses (nan when nothing was proposed)."""
        return self.accepted / self.proposed if self.proposed else float("nan")

    @property
    def prefill_s(self) -> float:
        return self.steps[0].verify_s if self.steps else 0.0

    @property
    def decode_s(self) -> float:
        """Time after the prompt's forward pass: every later step's proposing and verifying."""
        return sum(s.propose_s + s.verify_s for s in self.steps[1:])

    @property
    def total_s(self) -> float:
        return self.prefill_s + self.decode_s

    @property
    def forward_passes(self) -> int:
        """Forward passes of the big model (the prompt's included)."""
        return len(self.steps)

    def tokens_per_s(self) -> float:
        """Tokens after the first / decode time (the first token comes from the prompt's pass in both loops)."""
        n = len(self.tokens) - 1
        return n / self.decode_s if n > 0 and self.decode_s > 0 else float("nan")


class PromptLookup:
    """Propose what followed the last occurrence of the text's final n-gram (n = max_ngram down to 1)."""

    name = "prompt_lookup"

    def __init__(self, max_ngram: int = 3):
        if not 1 <= max_ngram <= 10:
            raise ValueError(f"max_ngram={max_ngram!r} is invalid: match the last 1 to 10 tokens.")
        self.max_ngram = max_ngram

    def propose(self, ids: list[int], k: int) -> list[int]:
        n_ids = len(ids)
        for n in range(min(self.max_ngram, n_ids - 1), 0, -1):
            tail = ids[-n:]
            # Latest earlier occurrence first: its continuation is the freshest guess.
            for start in range(n_ids - n - 1, -1, -1):
                if ids[start : start + n] == tail:
                    follow = ids[start + n : start + n + k]
                    if follow:
                        return list(follow)
        return []

    def reset(self) -> None:
        pass


class DraftProposer:
    """A draft model (same tokenizer) guesses k tokens greedily; it keeps its own KV cache across steps and
    cuts it back to what the big model kept."""

    name = "draft"

    def __init__(self, draft_model):
        self.model = draft_model
        self.reset()

    def reset(self) -> None:
        self.cache, self.cached = None, []  # the ids whose keys/values the draft cache holds

    def propose(self, ids: list[int], k: int) -> list[int]:
        from transformers import DynamicCache

        if k <= 0:
            return []
        if self.cache is None:
            self.cache = DynamicCache(config=self.model.config)
        keep = 0
        for a, b in zip(self.cached, ids[:-1]):  # at least the last token is fed again, for its logits
            if a != b:
                break
            keep += 1
        crop_to(self.cache, keep)
        self.cached = list(ids[:keep])
        new = list(ids[keep:])
        device = next(self.model.parameters()).device
        out = []
        for _ in range(k):
            x = torch.tensor([new], device=device)
            logits = self.model(input_ids=x, past_key_values=self.cache, use_cache=True, logits_to_keep=1).logits
            self.cached += new
            token = int(logits[0, -1].argmax())
            out.append(token)
            new = [token]
        return out


def verify(model, cache, feed: list[int], device, keep: int) -> torch.Tensor:
    """One forward pass over `feed` (the last token + the guesses) after `cache`: the argmax at each of the
    last `keep` positions (position i's is the model's choice for the token after feed[i])."""
    x = torch.tensor([feed], device=device)
    logits = model(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=keep).logits
    return logits[0].argmax(dim=-1)


def crop_to(cache, length: int) -> None:
    """Cut the cache back to its first `length` positions (transformers 5's `crop` takes how many to remove,
    as a negative number)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def accept_count(proposed: list[int], model_choice: list[int]) -> int:
    """Length of the longest prefix of `proposed` equal to the model's choices at those positions."""
    n = 0
    for guess, choice in zip(proposed, model_choice):
        if guess != choice:
            break
        n += 1
    return n


@inference_steps
def iter_speculative(
    loaded, prompt_ids: list[int], proposer=None, k: int = 4, max_new_tokens: int = 64
) -> Iterator[SpecStep]:
    """Yield one `SpecStep` per forward pass of the big model; `proposer=None` is plain greedy decoding."""
    if not prompt_ids:
        raise ValueError("prompt_ids is empty: speculative decoding continues a prompt.")
    if not 0 <= k <= 16:
        raise ValueError(f"k={k!r} is invalid: propose 0 to 16 tokens per step.")
    budget = new_token_budget(loaded, len(prompt_ids), max_new_tokens)
    model, device, tok = loaded.model, model_device(loaded), loaded.tokenizer
    stops = eos_ids(loaded)
    from transformers import DynamicCache

    # transformers' own cache and forward pass for both loops, so the comparison is like for like
    cache, text = DynamicCache(config=model.config), TextTracker(tok)
    ids, produced, index = list(prompt_ids), 0, 0
    if proposer is not None:
        proposer.reset()
    scheduler = shared_scheduler()
    while produced < budget:
        proposed, propose_s = [], 0.0
        if index > 0 and proposer is not None:
            with scheduler.turn("decode"):
                t0 = time.perf_counter()
                proposed = proposer.propose(ids, min(k, budget - produced - 1))[:k]
                propose_s = time.perf_counter() - t0
        with scheduler.turn("decode"):
            t0 = time.perf_counter()
            feed = ids[-1:] + proposed if index > 0 else ids
            choices = verify(model, cache, feed, device, 1 + len(proposed)).tolist()
            accepted = accept_count(proposed, choices)
            new = [*proposed[:accepted], choices[accepted]]
            crop_to(cache, len(ids) + accepted)  # keep the last token and the accepted guesses
            verify_s = time.perf_counter() - t0
        new = new[: budget - produced]
        for i, token in enumerate(new):
            if token in stops:
                new = new[: i + 1]
                break
        ids += new
        produced += len(new)
        yield SpecStep(
            index=index,
            proposed=proposed,
            accepted=accepted,
            own_token=choices[accepted],
            tokens=new,
            pieces=[text.add(t) for t in new],
            proposed_text=[tok.decode([t]) for t in proposed],
            propose_s=propose_s,
            verify_s=verify_s,
            cache_len=cache.get_seq_length(),
        )
        index += 1
        if new[-1] in stops:
            break


def speculative_decode(loaded, prompt_ids: list[int], proposer=None, k: int = 4, max_new_tokens: int = 64) -> SpecRun:
    run = SpecRun(
        prompt_ids=list(prompt_ids),
        method=proposer.name if proposer is not None else "greedy",
        k=k if proposer is not None else 0,
        threads=torch.get_num_threads(),
    )
    run.steps.extend(iter_speculative(loaded, prompt_ids, proposer, k, max_new_tokens))
    return run


def plain_greedy(loaded, prompt_ids: list[int], max_new_tokens: int = 64) -> SpecRun:
    """The baseline: the same loop, one token per forward pass."""
    return speculative_decode(loaded, prompt_ids, None, 0, max_new_tokens)
