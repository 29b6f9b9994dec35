"""What one decoding step is made of, shared by the token loop, beam search, contrastive search
and the metrics: the step records, prompt encoding, one forward pass on a KV cache, and the
text a token adds."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import os
from dataclasses import dataclass, field

import torch

from backends.core.coded import CodedError
from backends.core.scheduler import shared_scheduler
from backends.decoding.fast_step import FastCache, fast_logits, supports_fast


def inference_steps(genfunc):
    """Run a generator function's body under `torch.inference_mode`, one step at a time.

    A `with torch.inference_mode():` around a loop that yields keeps the mode on for the thread that
    iterates the generator while it is suspended (and until an abandoned one is collected): the
    caller's own autograd work in between would silently run without gradients. Here the mode is
    entered for each `next()` only and left before the item reaches the caller.
    """

    @functools.wraps(genfunc)
    def wrapper(*args, **kwargs):
        inner = genfunc(*args, **kwargs)
        try:
            while True:
                with torch.inference_mode():
                    try:
                        item = next(inner)
                    except StopIteration as end:
                        return end.value
                yield item
        finally:
            with torch.inference_mode():
                inner.close()

    return wrapper


@dataclass(frozen=True)
class Alternative:
    token_id: int
    text: str
    prob: float  # under the model's raw softmax
    filtered_prob: float = 0.0  # after penalties and filters: what the pick used


@dataclass(frozen=True)
class Candidate:
    """One contrastive-search candidate: score = (1 - alpha) * prob - alpha * similarity."""

    token_id: int
    text: str
    prob: float
    similarity: float  # highest cosine similarity to an earlier hidden state
    score: float


@dataclass(frozen=True)
class TokenStep:
    index: int  # 0 = first generated token
    token_id: int
    text: str  # this token alone (a chip label; may be part of a multi-byte character)
    piece: str  # what this token adds to the decoded output (for streaming the text)
    prob: float
    logprob: float
    filtered_prob: float
    top: list[Alternative]  # the most likely next tokens under the raw distribution
    candidates: list[Candidate] = field(default_factory=list)  # contrastive search only


@dataclass(frozen=True)
class StepDistribution:
    raw: list[Alternative]  # top tokens before filtering, most likely first
    filtered: list[Alternative]  # top tokens after filtering (only tokens still possible)
    kept: int  # how many tokens keep a non-zero probability after filtering
    kept_mass: float  # their share of the raw probability
    vocab_size: int


class PromptError(CodedError, ValueError):
    """A prompt the model cannot take (code: "empty", "no_template", "too_long"), said in English;
    a page words the code (`dec.error.<code>`)."""


def encode_prompt(loaded, text: str, chat: bool) -> list[int]:
    """Token ids of a raw prompt, or of one user message in the model's chat template."""
    if text is None or not str(text).strip():
        raise PromptError(
            f"The prompt is empty ({text!r}): type something for the model to continue.", "empty", text=repr(text)
        )
    tok = loaded.tokenizer
    if not chat:
        return list(tok(text)["input_ids"])
    if not getattr(tok, "chat_template", None):
        raise PromptError(
            f"{loaded.key.model!r} has no chat template: use a raw prompt (chat=False).",
            "no_template",
            model=loaded.key.model,
        )
    ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


def eos_ids(loaded) -> set[int]:
    eos = loaded.model.generation_config.eos_token_id
    if eos is None:
        eos = loaded.tokenizer.eos_token_id
    return set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])


def context_limit(loaded) -> int | None:
    """Positions the model reads (its config's max_position_embeddings: 8192 for SmolLM2, 64 for a
    small GPT trained on the scratch page); None when the config does not say."""
    limit = getattr(loaded.model.config, "max_position_embeddings", None)
    return limit if isinstance(limit, int) and limit > 0 else None


def new_token_budget(loaded, prompt_len: int, max_new: int) -> int:
    """`max_new`, capped so the prompt and the new tokens fit the model's context.

    A learned position table has no row past its end (GPT-2's raises an IndexError there), and a
    rotary model past its training length is out of what it learned: the loops stop at the limit.
    Raises PromptError (a ValueError) when the prompt alone fills the context."""
    limit = context_limit(loaded)
    if limit is None:
        return max_new
    if prompt_len >= limit:
        raise PromptError(
            f"The prompt has {prompt_len} tokens and this model reads at most {limit}: shorten the prompt.",
            "too_long",
            n=prompt_len,
            limit=limit,
        )
    return min(max_new, limit - prompt_len)


def model_device(loaded) -> torch.device:
    return next(loaded.model.parameters()).device


FAST_OFF = contextvars.ContextVar("fast_decode_off", default=False)


def fast_decode_enabled() -> bool:
    """The hand-written Llama pass is on unless LLMPG_FAST_DECODE=0 or inside `fast_decode_off()`."""
    return os.environ.get("LLMPG_FAST_DECODE", "1") != "0" and not FAST_OFF.get()


@contextlib.contextmanager
def fast_decode_off():
    """Loops whose caches are made inside the block (in this thread) take transformers' pass: to time the
    token loop both ways in one process. Another thread's loops are not affected."""
    token = FAST_OFF.set(True)
    try:
        yield
    finally:
        FAST_OFF.reset(token)


def new_cache(loaded, logits_only: bool = False):
    """A KV cache for one run of a loop. `logits_only=True` is for a loop of one sequence that only needs
    each step's logits (greedy, sampling, a grammar-guided loop): for a plain Llama model it is a
    `FastCache`, which `next_token_logits` fills with the hand-written pass (backends/decoding/fast_step.py:
    the same tokens as transformers, logits within ~1e-4 as its own StaticCache's are, because its large
    products run as two halves on two threads); otherwise, and for every other model, transformers'
    `DynamicCache` (beam search reorders it, contrastive search reads its hidden states)."""
    if logits_only and fast_decode_enabled() and supports_fast(loaded.model):
        return FastCache(loaded.model, split=True)
    from transformers import DynamicCache

    return DynamicCache(config=loaded.model.config)


@functools.cache
def keeps_last_logits_only(model_class: type) -> bool:
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


def next_token_logits(loaded, new_ids: torch.Tensor, cache, total_len: int) -> torch.Tensor:
    """Scores for the next token of every row of `new_ids` ([rows, new]) after `cache` (float32 [rows, vocab])."""
    if isinstance(cache, FastCache):
        if cache.length + new_ids.shape[-1] != total_len:
            raise ValueError(
                f"The cache holds {cache.length} positions: {new_ids.shape[-1]} new ones do not make {total_len}."
            )
        with shared_scheduler().turn("decode"), torch.inference_mode():  # its buffers are inference tensors
            return fast_logits(cache, new_ids).float()
    model = loaded.model
    extra = {"logits_to_keep": 1} if keeps_last_logits_only(type(model)) else {}
    mask = torch.ones(new_ids.shape[0], total_len, dtype=torch.long, device=new_ids.device)
    with shared_scheduler().turn("decode"):  # one token's forward pass: sessions take turns step by step
        out = model(
            input_ids=new_ids, attention_mask=mask, past_key_values=cache, use_cache=cache is not None, **extra
        )
    return out.logits[:, -1].float()


def top_alternatives(loaded, probs: torch.Tensor, filtered: torch.Tensor, n: int) -> list[Alternative]:
    values, ids = torch.topk(probs, min(n, probs.shape[-1]))
    ids = ids.tolist()
    kept = filtered[ids].tolist()
    texts = [loaded.tokenizer.decode([i]) for i in ids]
    return [Alternative(i, t, p, f) for i, t, p, f in zip(ids, texts, values.tolist(), kept)]


class TextTracker:
    """Turns tokens into the text they add, holding back bytes of a character not finished yet."""

    def __init__(self, tokenizer):
        self.tokenizer, self.ids, self.text = tokenizer, [], ""

    def add(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd") or not text.startswith(self.text):
            return ""
        piece, self.text = text[len(self.text) :], text
        return piece


def token_step(loaded, index, token, logits, scores, top_n, text, candidates=()) -> TokenStep:
    log_probs = logits.log_softmax(dim=-1)
    probs = log_probs.exp()
    filtered = scores.softmax(dim=-1)
    return TokenStep(
        index=index,
        token_id=token,
        text=loaded.tokenizer.decode([token]),
        piece=text.add(token),
        prob=float(probs[token]),
        logprob=float(log_probs[token]),
        filtered_prob=float(filtered[token]),
        top=top_alternatives(loaded, probs, filtered, top_n),
        candidates=list(candidates),
    )
