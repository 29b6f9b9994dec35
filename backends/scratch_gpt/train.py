"""Training as a background job: one optimizer step per scheduler turn, live losses, tokens/s and
samples as job events, stop (the run so far is kept) and resume, a seed for reproducibility.

Events carry `kind`: "step" (loss, lr, tokens_per_s), "eval" (train_loss, val_loss), "sample"
(text), "end". A job returns a Checkpoint; passing it back as `resume` continues where it stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from backends.core.scheduler import shared_scheduler

from .config import GPTConfig, TrainSettings
from .data import CharTokenizer, Prepared, get_batch
from .model import GPT

LABEL = "scratch_gpt"


@dataclass
class Checkpoint:
    """Everything needed to use the model or go on training it."""

    config: GPTConfig
    settings: TrainSettings
    tokenizer: CharTokenizer
    corpus: str
    model: GPT
    optimizer_state: dict
    batch_rng: torch.Tensor  # state of the generator that draws batches
    step: int = 0
    seconds: float = 0.0  # wall time of the training loops
    cpu_seconds: float = 0.0  # CPU time of the job's thread in them (what the machine's load does not change)
    history: list[dict] = field(default_factory=list)  # the step/eval/sample events so far

    def evals(self) -> list[dict]:
        return [e for e in self.history if e["kind"] == "eval"]

    @property
    def val_loss(self) -> float | None:
        evals = self.evals()
        return evals[-1]["val_loss"] if evals else None


def lr_at(step: int, s: TrainSettings) -> float:
    """Linear warm-up, then cosine decay from learning_rate to min_lr at lr_decay_iters (nanoGPT)."""
    if step < s.warmup_iters:
        return s.learning_rate * (step + 1) / (s.warmup_iters + 1)
    if step >= s.lr_decay_iters:
        return s.min_lr
    ratio = (step - s.warmup_iters) / max(1, s.lr_decay_iters - s.warmup_iters)
    return s.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (s.learning_rate - s.min_lr)


def make_optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices and embeddings only, never on biases and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": s.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=s.learning_rate, betas=(0.9, s.beta2))


def train_step(model: nn.Module, optimizer, x, y, lr: float, grad_clip: float) -> float:
    """One step: forward, loss, backward, clip, update. Returns the loss."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    _, loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


@torch.no_grad()
def estimate_loss(
    model: nn.Module, data: torch.Tensor, block_size: int, batch_size: int, iters: int, seed: int = 0
) -> float:
    """Mean loss over `iters` random batches drawn with a fixed seed (the same batches every time)."""
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    losses = []
    for _ in range(iters):
        x, y = get_batch(data, block_size, batch_size, gen)
        with shared_scheduler().turn(LABEL):
            losses.append(model(x, y)[1].item())
    model.train(was_training)
    return sum(losses) / len(losses)


@torch.no_grad()
def sample(
    model: GPT, tokenizer: CharTokenizer, prompt: str, n: int, temperature: float, seed: int, top_k: int | None = None
) -> str:
    """n new tokens (characters, or subwords) after the prompt, one forward pass (one scheduler turn) each."""
    gen = torch.Generator().manual_seed(seed)
    start = tokenizer.encode(prompt or "\n")
    if not start:  # a subword tokenizer may drop a lone newline: start from token 0, not shown
        start, prompt = [0], ""
    ids = torch.tensor([start], dtype=torch.long)
    was_training = model.training
    model.eval()
    for _ in range(n):
        with shared_scheduler().turn(LABEL):
            ids = model.generate(ids, 1, temperature=temperature, top_k=top_k, generator=gen)
    model.train(was_training)
    return tokenizer.decode(ids[0, 1 if not prompt else 0 :].tolist())


@torch.no_grad()
def inspect_prompt(model: GPT, tokenizer: CharTokenizer, prompt: str):
    """Attention maps and next-token probabilities for the last block_size tokens of a prompt (one turn)."""
    encoded = tokenizer.encode(prompt)[-model.config.block_size :]
    if not encoded:
        raise ValueError("The prompt gives no tokens: type some text.")
    ids = torch.tensor([encoded], dtype=torch.long)
    was_training = model.training
    model.eval()
    with shared_scheduler().turn(LABEL):
        result = model.inspect(ids)
    model.train(was_training)
    return ids[0].tolist(), result


def new_checkpoint(prepared: Prepared, config: GPTConfig, settings: TrainSettings) -> Checkpoint:
    config = replace(config, vocab_size=prepared.tokenizer.vocab_size)
    model = GPT(config, torch.Generator().manual_seed(settings.seed))
    optimizer = make_optimizer(model, settings)
    batch_rng = torch.Generator().manual_seed(settings.seed + 1).get_state()
    return Checkpoint(config, settings, prepared.tokenizer, prepared.name, model, optimizer.state_dict(), batch_rng)


def train_job(
    ctx, prepared: Prepared, config: GPTConfig, settings: TrainSettings, resume: Checkpoint | None = None
) -> Checkpoint:
    """Train from scratch, or from `resume` (a copy: the checkpoint passed in is left as it was).

    Returns the model as it is when the run ends or is stopped.
    """
    ckpt = copy_checkpoint(resume, settings) if resume is not None else new_checkpoint(prepared, config, settings)
    s, model, cfg = ckpt.settings, ckpt.model, ckpt.config
    optimizer = make_optimizer(model, s)
    optimizer.load_state_dict(ckpt.optimizer_state)
    gen = torch.Generator()
    gen.set_state(ckpt.batch_rng)
    model.train()
    tokens = s.batch_size * cfg.block_size

    def event(kind, progress=None, message="", **data):
        data = {"kind": kind, "step": ckpt.step, **data}
        ckpt.history.append(data)
        ctx.report(progress, message, **data)

    def evaluate():
        train = estimate_loss(model, prepared.train, cfg.block_size, s.batch_size, s.eval_iters, s.seed)
        val = estimate_loss(model, prepared.val, cfg.block_size, s.batch_size, s.eval_iters, s.seed)
        event("eval", ckpt.step / s.max_iters, f"step {ckpt.step}: val {val:.3f}", train_loss=train, val_loss=val)

    if ckpt.step == 0:
        evaluate()
    started, cpu_started = time.perf_counter(), time.thread_time()
    while ckpt.step < s.max_iters and not ctx.stopped:
        t0 = time.perf_counter()
        x, y = get_batch(prepared.train, cfg.block_size, s.batch_size, gen)
        with shared_scheduler().turn(LABEL):
            loss = train_step(model, optimizer, x, y, lr_at(ckpt.step, s), s.grad_clip)
        ckpt.step += 1
        took = time.perf_counter() - t0
        event(
            "step",
            ckpt.step / s.max_iters,
            f"step {ckpt.step}/{s.max_iters}: loss {loss:.3f}",
            loss=loss,
            lr=lr_at(ckpt.step - 1, s),
            tokens_per_s=tokens / max(took, 1e-9),
        )
        if s.eval_interval and ckpt.step % s.eval_interval == 0 and ckpt.step < s.max_iters:
            evaluate()
        if s.sample_interval and s.sample_chars and ckpt.step % s.sample_interval == 0:
            event(
                "sample",
                None,
                "",
                text=sample(model, ckpt.tokenizer, "", s.sample_chars, s.temperature, s.seed + ckpt.step),
            )
    ckpt.seconds += time.perf_counter() - started
    ckpt.cpu_seconds += time.thread_time() - cpu_started
    if not ckpt.evals() or ckpt.evals()[-1]["step"] != ckpt.step:
        evaluate()
    ckpt.optimizer_state = optimizer.state_dict()
    ckpt.batch_rng = gen.get_state()
    event("end", 1.0 if ckpt.step >= s.max_iters else None, f"{ckpt.step} steps", stopped=ctx.stopped)
    return ckpt


def copy_checkpoint(ckpt: Checkpoint, settings: TrainSettings | None = None) -> Checkpoint:
    """A deep copy to go on training (optionally with new settings, e.g. more steps)."""
    model = GPT(ckpt.config)
    model.load_state_dict(ckpt.model.state_dict())
    optimizer = make_optimizer(model, ckpt.settings)
    optimizer.load_state_dict(ckpt.optimizer_state)  # load_state_dict copies the tensors
    return replace(
        ckpt,
        settings=settings or ckpt.settings,
        model=model,
        optimizer_state=optimizer.state_dict(),
        batch_rng=ckpt.batch_rng.clone(),
        history=list(ckpt.history),
    )
