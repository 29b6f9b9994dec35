"""Masked-LM training of the scratch encoder on the GPT's corpora, filling in blanks, and the two
attention masks (bidirectional vs causal) as booleans for the page.

The job's events carry `kind`: "step" (loss), "eval" (val_loss on the same masked validation
batches every time, and the unigram baseline on those positions), "end". It returns an MLMRun.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from backends.core.coded import CodedError
from backends.core.scheduler import shared_scheduler
from backends.scratch_gpt import (
    IGNORE,
    CausalSelfAttention,
    CharTokenizer,
    Encoder,
    GPTConfig,
    MaskedVocab,
    Prepared,
    TrainSettings,
    get_batch,
    lr_at,
    make_optimizer,
    mask_tokens,
)

LABEL = "scratch_gpt"  # a training label of the scheduler: at most its training slots at once
BLANK = re.compile(r"\[MASK\]|_")  # what the user types for a blank

# Two layers: post-norm stacks of four stayed at the unigram loss here (post-norm is touchy); measured on this
# machine, 1 thread: shakespeare 81 s CPU, val MLM loss 1.76 vs unigram 3.26; tang_song 101 s, 5.18 vs 6.43.
MLM_CONFIG = GPTConfig(block_size=32, n_layer=2, n_head=4, n_embd=64)
MLM_SETTINGS = TrainSettings(
    max_iters=2400,
    batch_size=64,
    learning_rate=3e-3,
    min_lr=3e-4,
    warmup_iters=30,
    lr_decay_iters=2400,
    eval_interval=200,
    eval_iters=8,
    sample_interval=0,
    seed=1337,
)


class BlankError(CodedError, ValueError):
    """A fill-in text the model cannot take; `code` names the sentence for the page."""


@dataclass
class MLMRun:
    config: GPTConfig
    settings: TrainSettings
    vocab: MaskedVocab
    corpus: str
    model: Encoder
    step: int = 0
    seconds: float = 0.0  # wall time of the training loop
    cpu_seconds: float = 0.0  # CPU time of the job's thread in it (what the machine's load does not change)
    unigram_loss: float = float("nan")  # the best context-free guess on the same masked positions
    history: list[dict] = field(default_factory=list)

    @property
    def val_loss(self) -> float | None:
        evals = [e for e in self.history if e["kind"] == "eval"]
        return evals[-1]["val_loss"] if evals else None


def val_batches(prepared: Prepared, vocab: MaskedVocab, block_size: int, settings: TrainSettings):
    """The fixed masked validation batches: the same windows and the same masks at every evaluation."""
    gen = torch.Generator().manual_seed(settings.seed)
    batches = []
    for _ in range(settings.eval_iters):
        x, _ = get_batch(prepared.val, block_size, settings.batch_size, gen)
        batches.append(mask_tokens(x, vocab, gen))
    return batches


def unigram_baseline(train: torch.Tensor, labels: torch.Tensor, vocab_size: int) -> float:
    """Cross-entropy of the train set's character frequencies (add-one) on the masked labels."""
    counts = Counter(train.tolist())
    total = len(train) + vocab_size
    targets = labels[labels != IGNORE].tolist()
    return -sum(math.log((counts.get(i, 0) + 1) / total) for i in targets) / len(targets)


@torch.no_grad()
def mlm_loss(model: Encoder, batches) -> float:
    was = model.training
    model.eval()
    total, n = 0.0, 0
    for inputs, labels in batches:
        with shared_scheduler().turn(LABEL):
            _, loss = model(inputs, labels)
        k = int((labels != IGNORE).sum())
        total, n = total + loss.item() * k, n + k
    model.train(was)
    return total / n  # per masked position


def mlm_job(ctx, prepared: Prepared, config: GPTConfig = MLM_CONFIG, settings: TrainSettings = MLM_SETTINGS) -> MLMRun:
    """Train an encoder from scratch with masked LM; stop keeps the model so far."""
    if not isinstance(prepared.tokenizer, CharTokenizer):
        raise ValueError("The masked-LM encoder trains on characters (a CharTokenizer).")
    vocab = MaskedVocab(prepared.tokenizer)
    config = GPTConfig.from_dict({**config.to_dict(), "vocab_size": vocab.vocab_size})
    s = settings
    model = Encoder(config, torch.Generator().manual_seed(s.seed))
    run = MLMRun(config, s, vocab, prepared.name, model)
    optimizer = make_optimizer(model, s)
    gen = torch.Generator().manual_seed(s.seed + 1)
    evals = val_batches(prepared, vocab, config.block_size, s)
    run.unigram_loss = unigram_baseline(prepared.train, torch.cat([lab for _, lab in evals]), vocab.vocab_size)

    def event(kind, progress=None, message="", **data):
        data = {"kind": kind, "step": run.step, **data}
        run.history.append(data)
        ctx.report(progress, message, **data)

    def evaluate():
        val = mlm_loss(model, evals)
        event(
            "eval", run.step / s.max_iters, f"step {run.step}: val {val:.3f}", val_loss=val, unigram=run.unigram_loss
        )

    evaluate()
    model.train()
    started, cpu_started = time.perf_counter(), time.thread_time()
    while run.step < s.max_iters and not ctx.stopped:
        x, _ = get_batch(prepared.train, config.block_size, s.batch_size, gen)
        inputs, labels = mask_tokens(x, vocab, gen)
        lr = lr_at(run.step, s)
        with shared_scheduler().turn(LABEL):
            for group in optimizer.param_groups:
                group["lr"] = lr
            _, loss = model(inputs, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
            optimizer.step()
        run.step += 1
        event(
            "step", run.step / s.max_iters, f"step {run.step}/{s.max_iters}: loss {loss.item():.3f}", loss=loss.item()
        )
        if s.eval_interval and run.step % s.eval_interval == 0 and run.step < s.max_iters:
            evaluate()
    run.seconds = time.perf_counter() - started
    run.cpu_seconds = time.thread_time() - cpu_started
    evaluate()
    model.eval()
    event("end", 1.0 if run.step >= s.max_iters else None, f"{run.step} steps", stopped=ctx.stopped)
    return run


@dataclass
class Blank:
    """One blank: where it sits (token index) and the top predictions (character, probability)."""

    position: int
    predictions: list[tuple[str, float]]


def encode_blanks(vocab: MaskedVocab, text: str, block_size: int) -> tuple[list[int], list[int]]:
    """Ids with [MASK] at each blank ("_" or "[MASK]") and the blanks' positions; BlankError when unusable."""
    if not text.strip():
        raise BlankError("The text is empty: type a sentence with a blank (_ or [MASK]).", "empty")
    ids, blanks, at = [], [], 0
    for match in [*BLANK.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[at:end]
        unknown = vocab.unknown(piece)
        if unknown:
            raise BlankError(
                f"Characters the model never saw: {' '.join(unknown)}; use the corpus's characters.",
                "unknown",
                chars=" ".join(unknown),
            )
        ids += vocab.encode(piece)
        if match:
            blanks.append(len(ids))
            ids.append(vocab.mask_id)
            at = match.end()
    if not blanks:
        raise BlankError("No blank: mark the characters to guess with _ or [MASK].", "no_blank")
    if len(ids) > block_size:
        raise BlankError(
            f"The text is {len(ids)} tokens long; the model reads at most {block_size}.",
            "too_long",
            n=len(ids),
            limit=block_size,
        )
    return ids, blanks


@torch.no_grad()
def fill_mask(model: Encoder, vocab: MaskedVocab, text: str, top_k: int = 5) -> list[Blank]:
    """The top_k characters and their probabilities at every blank of `text`, all blanks in one pass."""
    ids, blanks = encode_blanks(vocab, text, model.config.block_size)
    was = model.training
    model.eval()
    with shared_scheduler().turn(LABEL):
        logits, _ = model(torch.tensor([ids]))
    model.train(was)
    probs = F.softmax(logits[0, blanks], dim=-1)
    top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
    return [
        Blank(pos, [(vocab.itos[i], p) for i, p in zip(idx.tolist(), val.tolist(), strict=True)])
        for pos, idx, val in zip(blanks, top.indices, top.values, strict=True)
    ]


@torch.no_grad()
def attention_masks(n: int = 12) -> dict[str, list[list[bool]]]:
    """Which key (column) each query (row) may attend to, read off the real attention module: weights > 0."""
    config = GPTConfig(vocab_size=2, block_size=n, n_layer=1, n_head=1, n_embd=8)
    x = torch.randn(1, n, 8, generator=torch.Generator().manual_seed(0))
    masks = {}
    for name, causal in (("bidirectional", False), ("causal", True)):
        _, weights = CausalSelfAttention(config, causal=causal)(x, return_weights=True)
        masks[name] = (weights[0, 0] > 0).tolist()
    return masks
