"""LoRA: optimizer steps/s of our background trainer vs. a plain peft + torch loop.

Same model (SmolLM2-135M-Instruct, offline, a private copy each run), data (the shipped
pirate set, same seeded order), batch and settings on both sides; eval and sample
generations are off for both, so each step is forward, backward, clip, AdamW and scheduler.
Ours runs through the shared job runner (a thread, per-step events); its time is from
submit to the job's end. Plain's time is from its own model copy to its last step. Both sides
run on --threads torch threads: the job runner sets each job thread's count from
LLMPG_JOB_THREADS (backends/core/jobs.job_threads, else all cores but one), so the bench sets
that variable to --threads, and each side reads torch.get_num_threads() on its own thread at
its start and end (shown; the bench stops if the two sides differ). Runs are
interleaved after one short warm-up each, the order swapped every repeat (ours first, then
plain first) so that memory already freed by one side does not favour the other; figures
are medians. Both sides start from the same seed, so their losses match step for step: the
bench compares them in every run and stops with an error and no JSON line when a step differs
by more than 1e-4 relative. Peak memory is measured in a fresh process per side (the kernel's peak RSS,
VmHWM, reset once the model is loaded, minus the RSS at that point): in one process, glibc keeps freed memory per
thread arena, so whichever side runs second would look cheaper. torch's CPU allocator is
invisible to tracemalloc.

Usage: .venv/bin/python bench/lora.py [--runs 5] [--steps 8] [--threads 1]
Last line: {"ratio": <ours/plain steps per second>, "ours_steps_s": ..., "plain_steps_s": ..., "threads": ...}
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path, where bench/tokenizers.py would shadow the
# `tokenizers` package that transformers imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import torch
from peft import LoraConfig, get_peft_model
from transformers import get_scheduler

from backends.core.jobs import THREADS_ENV, shared_runner
from backends.lora import data as D
from backends.lora import train as T
from backends.lora.config import LoraSettings
from backends.models.cache import shared_cache

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


THREADS: dict[str, set[int]] = {"ours": set(), "plain": set()}  # torch threads each side ran on
REL_TOL = 1e-4


def counted_train_job(ctx, *args):
    """T.train_job, noting the torch thread count of the job's own thread (set by the job runner)."""
    THREADS["ours"].add(torch.get_num_threads())
    try:
        return T.train_job(ctx, *args)
    finally:
        THREADS["ours"].add(torch.get_num_threads())


def ours(loaded, prepared) -> tuple[float, list[float]]:
    started = time.perf_counter()
    job = shared_runner().submit("lora-bench", counted_train_job, loaded.model, loaded.tokenizer, prepared, "bench")
    job.wait()
    seconds = time.perf_counter() - started
    if job.status != "done":
        raise RuntimeError(job.error)
    losses = [p["loss"] for p in job.result.steps]
    job.result = None
    return seconds, losses


def plain(loaded, prepared) -> tuple[float, list[float]]:
    """What a learner would write with peft and torch: no job, no events."""
    s = prepared.settings
    THREADS["plain"].add(torch.get_num_threads())
    started = time.perf_counter()
    torch.manual_seed(s.seed)
    model = get_peft_model(
        copy.deepcopy(loaded.model),
        LoraConfig(
            r=s.rank,
            lora_alpha=s.alpha,
            lora_dropout=s.dropout,
            target_modules=list(s.target_modules),
            task_type="CAUSAL_LM",
        ),
    )
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=s.weight_decay)
    scheduler = get_scheduler(
        T.SCHEDULER_NAMES[s.schedule],
        optimizer,
        num_warmup_steps=s.warmup_steps,
        num_training_steps=prepared.total_steps,
    )
    rng, order, losses = random.Random(s.seed), [], []
    for _ in range(prepared.total_steps):
        total = 0.0
        for _ in range(s.grad_accum):
            if not order:  # a new epoch: a fresh seeded shuffle
                order = list(range(len(prepared.train)))
                rng.shuffle(order)
            batch = [prepared.train[i] for i in order[: s.batch_size]]
            order = order[s.batch_size :]
            width = max(len(e.input_ids) for e in batch)
            ids = torch.tensor([list(e.input_ids) + [prepared.pad_id] * (width - len(e.input_ids)) for e in batch])
            labels = torch.tensor([list(e.labels) + [-100] * (width - len(e.labels)) for e in batch])
            mask = torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in batch])
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss / s.grad_accum
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(total)
    seconds = time.perf_counter() - started
    THREADS["plain"].add(torch.get_num_threads())
    return seconds, losses


def check_same_losses(ours_losses: list[float], plain_losses: list[float], run: int) -> float:
    """The largest relative difference of a step's loss; stops the bench (no JSON line) past REL_TOL."""
    if len(ours_losses) != len(plain_losses):
        raise SystemExit(f"run {run}: ours took {len(ours_losses)} steps, plain {len(plain_losses)}: not the same.")
    for step, (a, b) in enumerate(zip(ours_losses, plain_losses), 1):
        if abs(a - b) > REL_TOL * max(abs(a), abs(b), 1e-12):
            raise SystemExit(
                f"run {run}, step {step}: loss ours {a:.6f} vs plain {b:.6f} (relative difference "
                f"{abs(a - b) / max(abs(a), abs(b)):.2e} > {REL_TOL:g}): the two sides did not do the same work."
            )
    return max(abs(a - b) / max(abs(a), abs(b), 1e-12) for a, b in zip(ours_losses, plain_losses))


def check_same_threads(wanted: int) -> None:
    if THREADS["ours"] != {wanted} or THREADS["plain"] != {wanted}:
        raise SystemExit(
            f"torch threads: ours ran on {sorted(THREADS['ours'])}, plain on {sorted(THREADS['plain'])}, "
            f"--threads asked for {wanted}: the two sides did not run on the same threads."
        )


def setup(args):
    os.environ[THREADS_ENV] = str(args.threads)  # the job thread's count (read when each job starts)
    torch.set_num_threads(args.threads)  # this thread's, where the plain loop runs
    loaded = shared_cache().get("smollm2-135m-instruct")
    settings = LoraSettings(
        max_steps=args.steps,
        batch_size=4,
        max_length=128,
        eval_every=0,
        sample_every=0,
        eval_fraction=0.1,
        learning_rate=1e-3,
        warmup_steps=2,
    )
    return loaded, T.prepare(loaded.tokenizer, D.shipped_examples(), settings, loaded.model)


def peak_memory(args, side: str) -> int:
    """Run one side in a fresh process; its peak RSS above the RSS after loading, in bytes."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-of", side, "--steps", "3", "--threads", str(args.threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_bytes"]


def vm_hwm() -> int:
    """The kernel's peak RSS of this process (VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def memory_of(args) -> None:
    loaded, prepared = setup(args)
    before = rss()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM, so the peak of loading the model does not count
    (ours if args.memory_of == "ours" else plain)(loaded, prepared)
    print(json.dumps({"extra_bytes": vm_hwm() - before}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; 1 is steady on a shared machine, where OpenMP threads stall",
    )
    parser.add_argument("--memory-of", choices=["ours", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_of:
        return memory_of(args)
    loaded, prepared = setup(args)
    settings = prepared.settings
    warm = T.Prepared(settings.replace(max_steps=2), prepared.train, [], 2, prepared.pad_id)
    ours(loaded, warm), plain(loaded, warm)

    times, worst = {"ours": [], "plain": []}, 0.0
    sides = [("ours", ours), ("plain", plain)]
    for n in range(args.runs):
        losses = {}
        for name, fn in sides if n % 2 == 0 else sides[::-1]:
            seconds, losses[name] = fn(loaded, prepared)
            times[name].append(seconds)
        worst = max(worst, check_same_losses(losses["ours"], losses["plain"], n))
    check_same_threads(args.threads)
    rate = {k: prepared.total_steps / statistics.median(v) for k, v in times.items()}
    ratio = rate["ours"] / rate["plain"]
    peaks = {side: peak_memory(args, side) for side in ("ours", "plain")}

    print(
        f"SmolLM2-135M-Instruct LoRA r={settings.rank} {'+'.join(settings.target_modules)}, batch "
        f"{settings.batch_size}, max length {settings.max_length}, {prepared.total_steps} steps, "
        f"median of {args.runs} interleaved runs; torch threads read on each side's own thread: "
        f"ours {sorted(THREADS['ours'])}, plain {sorted(THREADS['plain'])}"
    )
    print(f"{'trainer':<8}{'steps/s':>10}{'s/run':>9}{'runs (s)':>30}{'peak RSS +MB':>14}")
    for name in ("ours", "plain"):
        runs = " ".join(f"{x:.1f}" for x in times[name])
        print(
            f"{name:<8}{rate[name]:>10.3f}{statistics.median(times[name]):>9.1f}{runs:>30}{peaks[name] / 2**20:>14.0f}"
        )
    print(
        f"ratio ours/plain {ratio:.3f}; losses equal step by step in every run (largest relative "
        f"difference {worst:.1e}, tolerance {REL_TOL:g}); "
        f"final loss {losses['ours'][-1]:.4f} (first {losses['ours'][0]:.4f})"
    )
    print(
        json.dumps(
            {
                "ratio": round(ratio, 3),
                "ours_steps_s": round(rate["ours"], 4),
                "plain_steps_s": round(rate["plain"], 4),
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
