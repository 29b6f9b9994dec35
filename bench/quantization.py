"""Quantization: the page's benchmark job on SmolLM2 for every variant that runs offline here.

Runs `backends.quantization.run_job` through the shared job runner (as the page does), prints the
table, then checks the harness: our fp32 decode loop (measure.speed, one scheduler turn per step)
against a bare `model.generate` greedy loop on the same cached model, same thread count,
interleaved, medians. generate's decode rate is (N - 1) / (t(N new tokens) - t(1 new token)), so
its prefill is left out as ours is.

Usage: .venv/bin/python bench/quantization.py [--ppl-tokens 5120] [--variants all] [--runs 3]
Last line: {"variants": n, "table_s": s, "best_int8_decode_speedup": x, "q8_kld": x, "q8_top1": x,
            "harness_ratio": x}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import torch

from backends.core.jobs import shared_runner
from backends.models.cache import shared_cache
from backends.quantization import BenchConfig, availability, run_job, spec
from backends.quantization import measure as M
from backends.quantization import text as T
from backends.quantization.catalog import SPECS
from backends.quantization.run import bench_threads
from backends.quantization.variants import TorchRunner


def harness(loaded, new_tokens: int, repeats: int) -> tuple[float, float]:
    """(our decode tok/s, generate's decode tok/s), medians of interleaved repeats on one thread count."""
    model, tok = loaded.model, loaded.tokenizer
    prompt = T.prompt_ids(tok)
    runner = TorchRunner(model)
    ours, bare = [], []

    def generate(n):
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(
                input_ids=prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                pad_token_id=tok.eos_token_id,
            )
        return time.perf_counter() - started

    generate(2)
    for _ in range(repeats):
        speed = M.speed(runner, prompt, prompt, new_tokens, 1)
        ours.append(speed.decode()[0])
        one, full = generate(1), generate(new_tokens)
        bare.append((new_tokens - 1) / (full - one))
    return statistics.median(ours), statistics.median(bare)


def table(rows) -> str:
    head = (
        f"{'variant':42} {'status':11} {'disk MB':>8} {'RAM MB':>8} {'prefill':>8} {'decode':>7} {'bound':>7} "
        f"{'ppl':>9} {'±95%':>6} {'KLD':>8} {'top1%':>6} {'build':>5} {'ppl s':>5} {'speed':>5} {'s':>5}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:

        def f(v, d=1, s=1.0):
            return "" if v is None else f"{v / s:.{d}f}"

        lines.append(
            f"{r.label[:42]:42} {r.status:11} {f(r.disk_bytes, 1, 1e6):>8} {f(r.mem_bytes, 1, 1e6):>8} "
            f"{f(r.prefill_tps):>8} {f(r.decode_tps, 2):>7} {f(r.bound_tps):>7} {f(r.perplexity, 3):>9} "
            f"{f(r.ppl_half_width(), 3):>6} {f(r.kld, 5):>8} {f(r.top1, 1, 0.01):>6} {f(r.build_s):>5} "
            f"{f(r.quality_s):>5} "
            f"{f(r.speed_s):>5} {r.seconds:5.1f}"
        )
        if r.error:
            lines.append(f"    {r.error[:150]}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ppl-tokens", type=int, default=BenchConfig.ppl_tokens)
    parser.add_argument("--variants", default="all", help="comma-separated keys, or all (every one that runs here)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--harness-repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(bench_threads())  # the job's measured steps use every core, so the harness does too
    loaded = shared_cache().get("smollm2-135m-instruct")
    here = availability("cpu")
    keys = [s.key for s in SPECS if here[s.key] is None] if args.variants == "all" else args.variants.split(",")
    for key, reason in here.items():
        if reason:
            print(f"not here: {key}: {reason}")
    config = BenchConfig(variants=tuple(keys), ppl_tokens=args.ppl_tokens, runs=args.runs, new_tokens=args.new_tokens)
    started = time.perf_counter()
    job = shared_runner().submit("quantization-bench", run_job, loaded.model, loaded.tokenizer, config, "smollm2")
    seen = 0
    while not job.wait(2):
        for event in job.events_since(seen):
            if event.data.get("kind") == "row":
                row = event.data["row"]
                print(f"  {time.perf_counter() - started:6.0f} s  {row['label']}: {row['status']}", flush=True)
        seen = len(job.events_since(0))
    table_s = time.perf_counter() - started
    if job.status != "done":
        raise SystemExit(f"the run {job.status}: {job.error}")
    report = job.result
    print(
        f"{len(report.rows)} variants, {args.ppl_tokens} perplexity tokens, {report.threads} thread(s), "
        f"copy bandwidth {report.bandwidth / 1e9:.1f} GB/s, {table_s:.0f} s"
    )
    print(table(report.rows))
    ok = [r for r in report.rows if r.status == "ok"]
    fp32 = report.row("fp32")
    int8 = [r.decode_tps / fp32.decode_tps for r in ok if spec(r.key).int8 and r.decode_tps]
    q8 = report.row("gguf-q8_0")
    ours, bare = harness(loaded, args.new_tokens, args.harness_repeats)
    print(f"harness: ours {ours:.2f} tok/s, model.generate {bare:.2f} tok/s")
    print(
        json.dumps(
            {
                "variants": len(ok),
                "table_s": round(table_s, 1),
                "best_int8_decode_speedup": round(max(int8), 3) if int8 else None,
                "q8_kld": round(q8.kld, 5) if q8 and q8.kld is not None else None,
                "q8_top1": round(q8.top1, 4) if q8 and q8.top1 is not None else None,
                "harness_ratio": round(ours / bare, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
