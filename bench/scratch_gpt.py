"""GPT from scratch: the default preset (nanoGPT's CPU "baby" config) on the shipped Shakespeare, and
our background trainer's speed against a bare PyTorch loop on the same model and batches.

1. One full run of the preset through the shared job runner, as the page starts it (evaluations
   every 250 steps included; samples off). train_s is the job's training loop time; val_loss is
   measured afterwards on 200 fixed validation batches (nanoGPT's eval_iters), lower noise than
   the run's own 20-batch estimates.
2. loop_ratio: `--rounds` interleaved pairs (order swapped every round) of `--steps` steps: our
   train_job (scheduler turn per step, per-step events) vs a plain loop written here (same init
   seed, same batch generator, same AdamW groups, lr schedule and clipping, no events). Both on
   job_threads() torch threads. The losses are checked equal step for step; figures are medians.

Usage: .venv/bin/python bench/scratch_gpt.py [--rounds 5] [--steps 60] [--skip-full]
Last line: {"val_loss": ..., "train_s": ..., "loop_ratio": ...}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import torch

from backends.core.jobs import job_threads, shared_runner
from backends.scratch_gpt import (
    BABY,
    GPT,
    estimate_loss,
    load_corpus,
    lr_at,
    prepare,
    train_job,
)
from backends.scratch_gpt.data import get_batch
from backends.scratch_gpt.train import make_optimizer


def ours(prepared, config, settings):
    job = shared_runner().submit("scratch_gpt-bench", train_job, prepared, config, settings)
    job.wait()
    if job.status != "done":
        raise RuntimeError(job.error)
    ckpt = job.result
    return ckpt, [e["loss"] for e in ckpt.history if e["kind"] == "step"], ckpt.seconds


def bare(prepared, config, settings):
    """The plain loop: what a tutorial writes, with the same seeds and optimizer."""
    torch.set_num_threads(job_threads())
    config = replace(config, vocab_size=prepared.tokenizer.vocab_size)
    model = GPT(config, torch.Generator().manual_seed(settings.seed))
    optimizer = make_optimizer(model, settings)
    gen = torch.Generator().manual_seed(settings.seed + 1)
    model.train()
    losses = []
    started = time.perf_counter()
    for step in range(settings.max_iters):
        x, y = get_batch(prepared.train, config.block_size, settings.batch_size, gen)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, settings)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    return losses, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--skip-full", action="store_true", help="only the loop ratio")
    args = parser.parse_args()
    config, settings = BABY
    prepared = prepare("shakespeare", load_corpus("shakespeare"), config.block_size)
    print(
        f"corpus: {prepared.n_tokens:,} characters, vocabulary {prepared.tokenizer.vocab_size}, "
        f"unigram baseline {prepared.unigram_loss():.3f}; torch threads per job: {job_threads()}"
    )

    val_loss = train_s = None
    if not args.skip_full:
        ckpt, _, train_s = ours(prepared, config, replace(settings, sample_interval=0))
        print("\nstep   train    val   (the run's own 20-batch estimates)")
        for e in ckpt.evals():
            print(f"{e['step']:>5} {e['train_loss']:7.3f} {e['val_loss']:6.3f}")
        torch.set_num_threads(job_threads())
        val_loss = estimate_loss(ckpt.model, prepared.val, config.block_size, settings.batch_size, 200, seed=1234)
        print(
            f"\nfull preset: {ckpt.step} steps in {train_s:.1f} s wall ({ckpt.step / train_s:.1f} steps/s), "
            f"{ckpt.cpu_seconds:.1f} s of CPU on the job's thread; val loss on 200 batches {val_loss:.4f}"
        )
        print(f"load average during the run (1/5/15 min): {os.getloadavg()} on {os.cpu_count()} cores")

    short = replace(settings, max_iters=args.steps, eval_interval=0, sample_interval=0, eval_iters=1)
    tokens = args.steps * short.batch_size * config.block_size
    ratios, ours_tps, bare_tps = [], [], []
    ours(prepared, config, replace(short, max_iters=5))  # warm-up both sides once
    bare(prepared, config, replace(short, max_iters=5))
    for r in range(args.rounds):
        sides = {}
        for side in ("ours", "bare") if r % 2 == 0 else ("bare", "ours"):
            if side == "ours":
                _, losses, seconds = ours(prepared, config, short)
            else:
                losses, seconds = bare(prepared, config, short)
            sides[side] = (losses, seconds)
        if sides["ours"][0] != sides["bare"][0]:
            raise AssertionError("our trainer and the bare loop disagree on the losses")
        ours_tps.append(tokens / sides["ours"][1])
        bare_tps.append(tokens / sides["bare"][1])
        ratios.append(ours_tps[-1] / bare_tps[-1])
        print(
            f"round {r + 1}: ours {ours_tps[-1]:8.0f} tok/s   bare {bare_tps[-1]:8.0f} tok/s   ratio {ratios[-1]:.3f}"
        )
    loop_ratio = statistics.median(ratios)
    print(f"\n{'':24}{'median':>10}")
    print(f"{'ours tokens/s':24}{statistics.median(ours_tps):10.0f}")
    print(f"{'bare loop tokens/s':24}{statistics.median(bare_tps):10.0f}")
    print(f"{'loop ratio':24}{loop_ratio:10.3f}   (losses equal step for step)")
    print(
        json.dumps(
            {
                "val_loss": val_loss and round(val_loss, 4),
                "train_s": train_s and round(train_s, 1),
                "loop_ratio": round(loop_ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
