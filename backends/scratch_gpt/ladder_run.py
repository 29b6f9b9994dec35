"""The ladder as a background job: the bigram counted, the other rungs trained on the same batches,
every rung scored on every token of the validation split (`ladder.exact_loss`).

Each trained rung gets the same number of steps, the same batches (same seed), AdamW, a short
warm-up and a cosine decay to a tenth of the peak learning rate at the last step. Steps and peak
come from the text's size (`ladder_defaults`), not from the Train tab: its 1e-3 (nanoGPT's baby
preset) leaves the full GPT at 2.10 after 1,000 steps on Shakespeare, where 1e-2 reaches 1.89;
on the 35,000-character poems the same 1,000 steps at 1e-2 memorise the text (MLP 8.56, worse than
guessing uniformly), while 300 steps at 1e-3 climb the ladder. Figures: docs/scratch_gpt.md.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from backends.core.scheduler import shared_scheduler

from .config import GPTConfig, TrainSettings
from .data import Prepared, get_batch
from .ladder import RUNGS, CountBigram, build, exact_loss
from .train import LABEL, lr_at, make_optimizer, train_step

LADDER_STEPS, LADDER_LR = 1000, 1e-2  # a long text: fewer steps leave the attention rungs near the bigram
SMALL_STEPS, SMALL_LR = 300, 1e-3  # a text under SMALL_TEXT training tokens: more would memorise it
SMALL_TEXT = 200_000
TABLE_SIZE = 12  # rows and columns of the count table the page shows


def schedule(settings: TrainSettings, steps: int, learning_rate: float) -> TrainSettings:
    """The rung's schedule: warm-up (at most a tenth of the steps), cosine down to lr / 10 at `steps`."""
    return replace(
        settings,
        learning_rate=learning_rate,
        min_lr=learning_rate / 10,
        warmup_iters=min(settings.warmup_iters, steps // 10),
        lr_decay_iters=steps,
    )


def ladder_defaults(prepared: Prepared) -> tuple[int, float]:
    """Steps per trained rung and peak learning rate for this text."""
    return (SMALL_STEPS, SMALL_LR) if len(prepared.train) < SMALL_TEXT else (LADDER_STEPS, LADDER_LR)


def turn():
    return shared_scheduler().turn(LABEL)


def count_rung(prepared: Prepared) -> tuple[CountBigram, dict]:
    """The bigram rung: the table of counts and what the page shows of it."""
    with turn():
        model = CountBigram.fit(prepared.train, prepared.tokenizer.vocab_size)
    top, table = model.top_table(TABLE_SIZE)
    return model, {
        "k": model.k,
        "pairs": len(prepared.train) - 1,
        "seen": int((model.counts > 0).sum()),
        "cells": model.vocab_size**2,
        "top": [prepared.tokenizer.itos[i] for i in top],
        "table": table,
    }


def ladder_job(
    ctx,
    prepared: Prepared,
    config: GPTConfig,
    settings: TrainSettings,
    steps: int,
    rungs: tuple[str, ...] = RUNGS,
    learning_rate: float = LADDER_LR,
) -> list[dict]:
    """The rungs in order; a result per rung: params, val_loss (exact), seconds, and the bigram's table
    or the trained rung's peak learning rate."""
    config = replace(config, vocab_size=prepared.tokenizer.vocab_size)
    results = []
    for r, rung in enumerate(rungs):
        started = time.perf_counter()
        if rung == "bigram":
            model, extra = count_rung(prepared)
            params = model.vocab_size**2
        else:
            model = build(rung, config, torch.Generator().manual_seed(settings.seed))
            plan = schedule(settings, steps, learning_rate)
            optimizer = make_optimizer(model, plan)
            gen = torch.Generator().manual_seed(settings.seed + 1)
            model.train()
            for step in range(steps):
                if ctx.stopped:
                    return results
                x, y = get_batch(prepared.train, config.block_size, settings.batch_size, gen)
                with turn():
                    loss = train_step(model, optimizer, x, y, lr_at(step, plan), settings.grad_clip)
                ctx.report(
                    (r + (step + 1) / steps) / len(rungs),
                    f"{rung}: step {step + 1}/{steps}",
                    kind="step",
                    rung=rung,
                    step=step + 1,
                    loss=loss,
                )
            extra, params = {"lr": plan.learning_rate}, sum(p.numel() for p in model.parameters())
        val = exact_loss(model, prepared.val, config.block_size, turn=turn)
        result = {"rung": rung, "params": params, "val_loss": val, "seconds": time.perf_counter() - started, **extra}
        results.append(result)
        ctx.report((r + 1) / len(rungs), f"{rung}: val {val:.3f}", kind="rung", **result)
    return results
