"""Architectures: each family's default run as the page starts it, and training on two processes.

1. The masked-LM encoder (`mlm_job`, Shakespeare): the final validation MLM loss (masked positions
   only) beside the unigram baseline on the same positions.
2. The encoder-decoder (`seq2seq_job`, default task): held-out exact match and corpus chrF (0-100,
   sacrebleu's definition; the tests check ours against sacrebleu), greedy and beam.
3. Dense vs mixture of experts (`moe_job`): the same batches, steps and seed, the dense MLP as wide
   as the MoE's active experts; final validation losses.
4. The scratch GPT on 1 and 2 processes (`distributed_job`, torchrun, gloo, one thread per rank) at
   the same global batch: the largest loss gap between the two curves, the median step time ratio
   (2 processes / 1), and under FSDP the bytes rank 0 measures (its shards + the tensors saved for
   backward) over the calculator's prediction.

Runs go through the shared job runner as the page starts them (job_threads() torch threads: 1 on
2 cores), one after another; training seconds are each job's own loop time.

Usage: .venv/bin/python bench/architectures.py [--steps-ddp 30]
Last line: {"mlm_val_loss", "seq2seq_chrf", "moe_val_loss", "dense_val_loss", "ddp_loss_gap",
"ddp_step_ratio", "fsdp_mem_ratio", "mlm_s", "seq2seq_s", "moe_s", "dense_s", "ddp_s", "fsdp_s", ...}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
# Runs write their folders (the distributed ranks' logs) under a cache of their own, not the user's.
os.environ.setdefault("LLMPG_CACHE_DIR", tempfile.mkdtemp(prefix="llmpg-bench-arch-"))

from backends import architectures as arch
from backends import distributed as dd
from backends.core.jobs import shared_runner
from backends.scratch_gpt import load_corpus, prepare


def run(name, fn, *args, **kwargs):
    started = time.perf_counter()
    job = shared_runner().submit(name, fn, *args, **kwargs)
    job.wait()
    if job.status != "done":
        raise RuntimeError(f"{name}: {job.error}")
    return job.result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps-ddp", type=int, default=30)
    args = parser.parse_args()
    rows, out = [], {}

    text = load_corpus("shakespeare")
    mlm, wall = run("bench-mlm", arch.mlm_job, prepare("shakespeare", text, arch.MLM_CONFIG.block_size))
    evals = [e for e in mlm.history if e["kind"] == "eval"]
    out["mlm_val_loss"] = evals[-1]["val_loss"]
    out["mlm_unigram_loss"] = mlm.unigram_loss
    out["mlm_s"] = mlm.seconds
    rows.append(
        ("MLM encoder", f"val MLM loss {out['mlm_val_loss']:.3f} (unigram {mlm.unigram_loss:.3f})", mlm.seconds)
    )

    s2s, wall = run("bench-seq2seq", arch.seq2seq_job)
    sc = s2s.scores
    out["seq2seq_chrf"] = sc["beam_chrf"]
    out["seq2seq_chrf_greedy"] = sc["greedy_chrf"]
    out["seq2seq_exact_beam"] = sc["beam_exact"]
    out["seq2seq_exact_greedy"] = sc["greedy_exact"]
    out["seq2seq_task"] = getattr(s2s, "task", "couplet")
    out["seq2seq_s"] = s2s.seconds
    rows.append(
        (
            f"encoder-decoder ({out['seq2seq_task']})",
            f"held-out chrF greedy {sc['greedy_chrf']:.1f} / beam {sc['beam_chrf']:.1f}, exact "
            f"{sc['greedy_exact']:.0%} / {sc['beam_exact']:.0%} (n={sc['n']}, val loss {s2s.val_loss:.3f})",
            s2s.seconds,
        )
    )

    moe, wall = run("bench-moe", arch.moe_job, prepare("shakespeare", text, arch.MOE_CONFIG.block_size))
    out["moe_val_loss"], out["dense_val_loss"] = moe.val_loss("moe"), moe.val_loss("dense")
    out["moe_s"], out["dense_s"] = moe.seconds["moe"], moe.seconds["dense"]
    out["moe_params"] = moe.params
    rows.append(("dense GPT", f"val loss {out['dense_val_loss']:.3f}", moe.seconds["dense"]))
    rows.append(("MoE GPT", f"val loss {out['moe_val_loss']:.3f}  params {moe.params}", moe.seconds["moe"]))

    ddp, wall = run("bench-ddp", dd.distributed_job, dd.RunSpec(nproc=2, strategy="ddp", steps=args.steps_ddp))
    c = ddp["compare"]
    out["ddp_loss_gap"], out["ddp_step_ratio"] = c["loss_gap"], c["step_ratio"]
    out["ddp_step_ms"], out["single_step_ms"] = c["step_s"] * 1000, c["single_step_s"] * 1000
    out["ddp_s"] = ddp["main"]["seconds"]
    out["ddp_wall_s"] = wall
    rows.append(
        (
            "DDP 2 processes",
            f"loss gap {c['loss_gap']:.2g}, step {c['step_s'] * 1000:.0f} ms vs 1 process "
            f"{c['single_step_s'] * 1000:.0f} ms (ratio {c['step_ratio']:.2f})",
            ddp["main"]["seconds"],
        )
    )

    fsdp, wall = run("bench-fsdp", dd.distributed_job, dd.RunSpec(nproc=2, strategy="fsdp", steps=args.steps_ddp))
    ratios = []
    for m in fsdp["main"]["memory"]:
        ratios.append(sum(m["measured"].values()) / m["predicted"]["total"])
    out["fsdp_mem_ratio"] = ratios[0]
    out["fsdp_mem_ratio_ranks"] = ratios
    out["fsdp_loss_gap"] = fsdp["compare"]["loss_gap"]
    out["fsdp_s"] = fsdp["main"]["seconds"]
    m0 = fsdp["main"]["memory"][0]
    rows.append(
        (
            "FSDP 2 processes",
            f"rank 0 measured {sum(m0['measured'].values()) / 1e6:.2f} MB / predicted "
            f"{m0['predicted']['total'] / 1e6:.2f} MB (ratio {ratios[0]:.3f}); loss gap {out['fsdp_loss_gap']:.2g}",
            fsdp["main"]["seconds"],
        )
    )

    print(f"{'run':<32} {'train s':>8}  result")
    for name, result, seconds in rows:
        print(f"{name:<32} {seconds:>8.1f}  {result}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
