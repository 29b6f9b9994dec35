"""Dense vs mixture of experts: the same data, steps, seed and batches; the dense GPT's MLP as wide as
the k experts a token uses together, so both spend the same compute per token (active parameters),
while the MoE holds n/k times the MLP parameters. Then which expert each token of a text goes to.

The job's events carry `kind` and `model` ("dense" or "moe"): "step" (loss: the language-model loss,
the MoE's balance loss shown apart as `aux`), "eval" (val_loss), then "end" (final val losses,
parameter counts, routing of a sample text). It returns a MoERun.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from backends.core.scheduler import shared_scheduler
from backends.scratch_gpt import (
    GPT,
    CharTokenizer,
    GPTConfig,
    MoEGPT,
    Prepared,
    TrainSettings,
    estimate_loss,
    get_batch,
    lr_at,
    make_optimizer,
    moe_gpt,
)

LABEL = "scratch_gpt"  # a training label of the scheduler
MODELS = ("dense", "moe")
SAMPLE = {
    "shakespeare": "ROMEO:\nBut soft, what light through yonder window breaks?",
    "tang_song": "床前明月光，疑是地上霜。",
}

MOE_CONFIG = GPTConfig(block_size=64, n_layer=2, n_head=4, n_embd=96)
MOE_SETTINGS = TrainSettings(
    max_iters=1000,
    batch_size=16,
    learning_rate=2e-3,
    min_lr=2e-4,
    warmup_iters=40,
    lr_decay_iters=1000,
    eval_interval=200,
    eval_iters=8,
    sample_interval=0,
    seed=1337,
)
# The Tang and Song poems are 35k characters: past ~400 steps both models learn them by heart (validation
# loss rises again), so that corpus trains 400 steps. Measured, 1 thread, CPU seconds of both models together:
# shakespeare 1000 steps 87 s (dense 1.99, MoE 1.94, unigram 3.31); tang_song 400 steps 63 s (5.44, 5.44, 6.37).
MOE_STEPS = {"shakespeare": 1000, "tang_song": 400}


def moe_settings(corpus: str) -> TrainSettings:
    """MOE_SETTINGS with the corpus's number of steps."""
    steps = MOE_STEPS.get(corpus, MOE_SETTINGS.max_iters)
    return TrainSettings.from_dict({**MOE_SETTINGS.to_dict(), "max_iters": steps, "lr_decay_iters": steps})


@dataclass
class MoERun:
    config: GPTConfig
    settings: TrainSettings
    tokenizer: CharTokenizer
    corpus: str
    dense: GPT
    moe: MoEGPT
    n_experts: int
    top_k: int
    step: int = 0
    seconds: dict = field(default_factory=lambda: dict.fromkeys(MODELS, 0.0))  # each model's training time (wall)
    cpu_seconds: dict = field(default_factory=lambda: dict.fromkeys(MODELS, 0.0))  # the job thread's CPU time
    params: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def val_loss(self, model: str) -> float | None:
        evals = [e for e in self.history if e["kind"] == "eval" and e["model"] == model]
        return evals[-1]["val_loss"] if evals else None


def param_counts(dense: GPT, moe: MoEGPT) -> dict[str, int]:
    """Total and active (used by one token) parameters of each model; the dense one uses all of its own."""
    return {
        "dense_total": dense.num_params(),
        "dense_active": dense.num_params(),
        "moe_total": moe.num_params(),
        "moe_active": moe.active_params(),
    }


@torch.no_grad()
def routing(model: MoEGPT, tokenizer: CharTokenizer, text: str) -> dict:
    """Where each token of `text` (its first block_size tokens) goes, layer by layer.

    Returns tokens (the characters), experts (per layer, per token: the k expert ids, best first),
    top1 (per layer, per token: the first choice, what a heatmap colours) and shares (per layer: each
    expert's share of the routed slots).
    """
    ids = tokenizer.encode(text)[: model.config.block_size]
    if not ids:
        raise ValueError("The text is empty: type some text to route.")
    was = model.training
    model.eval()
    with shared_scheduler().turn(LABEL):
        model(torch.tensor([ids]))
    model.train(was)
    experts, top1, shares = [], [], []
    for block in model.h:
        chosen = block.mlp.last_experts[0]  # (time, k)
        experts.append(chosen.tolist())
        top1.append(chosen[:, 0].tolist())
        counts = torch.bincount(chosen.flatten(), minlength=block.mlp.n_experts)
        shares.append((counts / counts.sum()).tolist())
    return {"tokens": [tokenizer.itos[i] for i in ids], "experts": experts, "top1": top1, "shares": shares}


def moe_job(
    ctx,
    prepared: Prepared,
    config: GPTConfig = MOE_CONFIG,
    settings: TrainSettings = MOE_SETTINGS,
    n_experts: int = 4,
    top_k: int = 2,
    aux_coef: float = 0.01,
    sample_text: str | None = None,
) -> MoERun:
    """Train a dense GPT and a MoE GPT side by side, one step of each per batch; stop keeps both."""
    config = GPTConfig.from_dict({**config.to_dict(), "vocab_size": prepared.tokenizer.vocab_size})
    s = settings
    dense = GPT(config, torch.Generator().manual_seed(s.seed))
    moe = moe_gpt(config, n_experts, top_k, torch.Generator().manual_seed(s.seed), aux_coef=aux_coef)
    run = MoERun(config, s, prepared.tokenizer, prepared.name, dense, moe, n_experts, top_k)
    run.params = param_counts(dense, moe)
    models = {"dense": dense, "moe": moe}
    optimizers = {name: make_optimizer(m, s) for name, m in models.items()}
    gen = torch.Generator().manual_seed(s.seed + 1)

    def event(kind, progress=None, message="", **data):
        data = {"kind": kind, "step": run.step, **data}
        run.history.append(data)
        ctx.report(progress, message, **data)

    def evaluate():
        for name, m in models.items():
            val = estimate_loss(m, prepared.val, config.block_size, s.batch_size, s.eval_iters, s.seed)
            event("eval", run.step / s.max_iters, f"step {run.step}: {name} val {val:.3f}", model=name, val_loss=val)

    evaluate()
    for m in models.values():
        m.train()
    while run.step < s.max_iters and not ctx.stopped:
        x, y = get_batch(prepared.train, config.block_size, s.batch_size, gen)  # one batch for both
        lr = lr_at(run.step, s)
        for name, m in models.items():
            started, cpu_started = time.perf_counter(), time.thread_time()
            with shared_scheduler().turn(LABEL):
                for group in optimizers[name].param_groups:
                    group["lr"] = lr
                _, loss = m(x, y)
                optimizers[name].zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(m.parameters(), s.grad_clip)
                optimizers[name].step()
            run.seconds[name] += time.perf_counter() - started
            run.cpu_seconds[name] += time.thread_time() - cpu_started
            aux = m.aux_loss().item() if name == "moe" else None
            lm = loss.item() - (aux_coef * aux if aux is not None else 0.0)
            event(
                "step",
                (run.step + 1) / s.max_iters,
                f"step {run.step + 1}: {name} {lm:.3f}",
                model=name,
                loss=lm,
                aux=aux,
                step=run.step + 1,
            )
        run.step += 1
        if s.eval_interval and run.step % s.eval_interval == 0 and run.step < s.max_iters:
            evaluate()
    evaluate()
    for m in models.values():
        m.eval()
    sample = routing(
        moe,
        prepared.tokenizer,
        sample_text or SAMPLE.get(prepared.name) or prepared.tokenizer.decode(prepared.val[:48].tolist()),
    )
    event(
        "end",
        1.0 if run.step >= s.max_iters else None,
        f"{run.step} steps",
        stopped=ctx.stopped,
        val={name: run.val_loss(name) for name in MODELS},
        seconds=dict(run.seconds),
        cpu_seconds=dict(run.cpu_seconds),
        params=run.params,
        routing=sample,
    )
    return run
