"""Quantization: the page's benchmark job on SmolLM2 for every variant that runs offline here.

Runs `backends.quantization.run_job` through the shared job runner (as the page does), prints the
table, then checks the harness (`harness`): the page's fp32 decode loop (one exclusive scheduler
turn per step, the turn inside the timed region) against a bare `model.generate` greedy loop on the
same cached model and thread count: the same tokens (checked), the same statistic (the mean rate of
the N - 1 decode steps after the prefill; generate's (N - 1) / (t(N new tokens) - t(1 new token))),
interleaved, medians of the repeats.

The headline int8 speed-up is over the int8 variants that keep quality (KLD to the baseline below
run.QUALITY_KLD = 0.05); the lossy ones (fbgemm's per-tensor dynamic int8) are printed beside it,
labelled. `baseline` names what the baseline weights are (the embedded SmolLM2's: its Q4_1 GGUF's).

`all` is every variant that runs here except the CPU's opt-in ones (bitsandbytes, ~20 s a row, off by
default on the page too; issue 33): `--with-opt-in` adds them.

Usage: .venv/bin/python bench/quantization.py [--ppl-tokens 5120] [--variants all] [--runs 3] [--with-opt-in]
Last line: {"variants": n, "table_s": s, "best_int8_decode_speedup": x, "q8_kld": x, "q8_top1": x,
            "harness_ratio": x, "baseline": "...", "best_int8_decode_speedup_lossless": x,
            "best_int8_decode_speedup_lossy": x, "kld_q4k_real": x}
(best_int8_decode_speedup = best_int8_decode_speedup_lossless: quality-keeping variants only;
kld_q4k_real: GGUF Q4_K_M's KLD on real-valued weights, the GPT of backends/quantization/real_gpt.py,
trained once on Shakespeare, whose rows of 256 and 1024 take real K-quants; the table of its GGUF
rows is printed after SmolLM2's.)
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
from backends.core.scheduler import shared_scheduler
from backends.models.cache import shared_cache
from backends.quantization import (
    QUALITY_KLD,
    BenchConfig,
    availability,
    describe,
    int8_speedups,
    opt_in,
    real_gpt,
    run_job,
)
from backends.quantization import measure as M
from backends.quantization import text as T
from backends.quantization.catalog import SPECS
from backends.quantization.run import bench_threads
from backends.quantization.variants import TorchRunner


def harness(loaded, new_tokens: int, repeats: int) -> tuple[float, float]:
    """(our decode tok/s, generate's decode tok/s): the same statistic over the same work on both sides.

    Both: greedy, `new_tokens` tokens from the same prompt, the prefill (which yields the first token)
    left out, the mean rate over the other new_tokens - 1 decode steps. Ours is the page's decode loop
    (TorchRunner.step, each step in its own exclusive scheduler turn, the turn and the argmax inside the
    timed region); generate's is (N - 1) / (t(N new tokens) - t(1 new token)). The two continuations
    are checked equal. Interleaved repeats on the same thread count; medians."""
    model, tok = loaded.model, loaded.tokenizer
    prompt = T.prompt_ids(tok)
    runner = TorchRunner(model)
    scheduler = shared_scheduler()
    ours, bare = [], []

    def generate(n):
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                pad_token_id=tok.eos_token_id,
            )
        return time.perf_counter() - started, out[0, prompt.shape[1] :].tolist()

    def our_loop(n):
        with scheduler.turn(M.LABEL, exclusive=True):
            state, last = runner.start(prompt)
        tokens = [int(last.argmax())]
        started = time.perf_counter()
        for _ in range(n - 1):
            with scheduler.turn(M.LABEL, exclusive=True):
                state, last = runner.step(state, tokens[-1])
            tokens.append(int(last.argmax()))
        return (n - 1) / (time.perf_counter() - started), tokens

    generate(2), our_loop(2)  # warm-up
    for _ in range(repeats):
        rate, ours_tokens = our_loop(new_tokens)
        ours.append(rate)
        (one, _), (full, theirs) = generate(1), generate(new_tokens)
        bare.append((new_tokens - 1) / (full - one))
        if ours_tokens != theirs:
            raise SystemExit(f"harness: our greedy tokens {ours_tokens} differ from generate's {theirs}")
    return statistics.median(ours), statistics.median(bare)


def speedup_text(r, base) -> str:
    """Decode speed over the baseline's, labelled lossy when the variant loses quality (KLD >= 0.05)."""
    if not (r.decode_tps and base is not None and base.decode_tps):
        return ""
    lossy = r.kld is not None and r.kld >= QUALITY_KLD
    return f"{r.decode_tps / base.decode_tps:.2f}x" + (" lossy" if lossy else "")


def table(rows) -> str:
    head = (
        f"{'variant':50} {'status':11} {'disk MB':>8} {'RAM MB':>8} {'prefill':>8} {'decode':>7} "
        f"{'x base':>11} {'bound':>7} {'ppl':>9} {'±95%':>6} {'KLD':>8} {'top1%':>6} {'build':>5} {'ppl s':>5} "
        f"{'speed':>5} {'s':>5}"
    )
    lines = [head, "-" * len(head)]
    base = next((r for r in rows if r.key == "fp32"), None)
    for r in rows:

        def f(v, d=1, s=1.0):
            return "" if v is None else f"{v / s:.{d}f}"

        lines.append(
            f"{r.label[:50]:50} {r.status:11} {f(r.disk_bytes, 1, 1e6):>8} {f(r.mem_bytes, 1, 1e6):>8} "
            f"{f(r.prefill_tps):>8} {f(r.decode_tps, 2):>7} {speedup_text(r, base):>11} {f(r.bound_tps):>7} "
            f"{f(r.perplexity, 3):>9} "
            f"{f(r.ppl_half_width(), 3):>6} {f(r.kld, 5):>8} {f(r.top1, 1, 0.01):>6} {f(r.build_s):>5} "
            f"{f(r.quality_s):>5} "
            f"{f(r.speed_s):>5} {r.seconds:5.1f}"
        )
        if r.error:
            lines.append(f"    {r.error[:150]}")
    return "\n".join(lines)


def headline(report, keep: dict, lossy: dict) -> str:
    """The best int8 decode speed-up that keeps quality, and the lossy ones beside it, labelled."""

    def one(key, x):
        return f"{report.row(key).label} {x:.2f}x (KLD {report.row(key).kld:.3f})"

    best = max(keep, key=keep.get) if keep else None
    text = f"best int8 decode speed-up keeping quality (KLD < {QUALITY_KLD}): " + (
        one(best, keep[best]) if best else "none"
    )
    if lossy:
        text += "; lossy, not the headline: " + ", ".join(
            one(k, x) for k, x in sorted(lossy.items(), key=lambda i: -i[1])
        )
    return text


REAL_VARIANTS = ("fp32", "gguf-q8_0", "gguf-q5_1", "gguf-q5_0", "gguf-q4_0", "gguf-q4_k_m")


def real_valued_table(runs: int):
    """The GGUF rows on real-valued weights: the GPT of real_gpt.py (trained once, here, if its folder is
    missing), same settings cut to its 64 positions. Returns the report."""
    started = time.perf_counter()
    folder = real_gpt.train_and_export()
    loaded = shared_cache().get(str(folder))
    print(f"\nreal-valued weights: {folder} ({time.perf_counter() - started:.0f} s to have it)")
    config = BenchConfig(variants=REAL_VARIANTS, runs=runs)
    job = shared_runner().submit(
        "quantization-bench-real", run_job, loaded.model, loaded.tokenizer, config, "gpt", "cpu", describe(loaded)
    )
    job.wait()
    if job.status != "done":
        raise SystemExit(f"the real-valued run {job.status}: {job.error}")
    report = job.result
    print(report.fitted)
    print(table(report.rows))
    for r in report.rows:
        print(f"  {r.label}: {r.bits:.2f} bits/weight, weight error {r.weight_error:.5f}; {r.note[:110]}")
    print(f"baseline: {report.baseline.text}")
    return report


def last_line(report, table_s: float, harness_ratio: float, real=None) -> dict:
    """The JSON of the last line: the headline int8 speed-up over quality-keeping variants only
    (`best_int8_decode_speedup` and `_lossless` are the same figure), the lossy one beside it."""
    keep, lossy = int8_speedups(report.rows)
    best = round(max(keep.values()), 3) if keep else None
    q8 = report.row("gguf-q8_0")
    return {
        "variants": sum(r.status == "ok" for r in report.rows),
        "table_s": round(table_s, 1),
        "best_int8_decode_speedup": best,
        "q8_kld": round(q8.kld, 5) if q8 and q8.kld is not None else None,
        "q8_top1": round(q8.top1, 4) if q8 and q8.top1 is not None else None,
        "harness_ratio": round(harness_ratio, 3),
        "baseline": report.baseline.text,
        "best_int8_decode_speedup_lossless": best,
        "best_int8_decode_speedup_lossy": round(max(lossy.values()), 3) if lossy else None,
        "kld_q4k_real": round(real.row("gguf-q4_k_m").kld, 6) if real and real.row("gguf-q4_k_m") else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ppl-tokens", type=int, default=BenchConfig.ppl_tokens)
    parser.add_argument(
        "--variants", default="all", help="comma-separated keys, or all (every one that runs here but the opt-in ones)"
    )
    parser.add_argument("--with-opt-in", action="store_true", help="all includes the CPU's opt-in rows (bitsandbytes)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--harness-repeats", type=int, default=5)
    parser.add_argument("--no-real", action="store_true", help="skip the real-valued GPT's GGUF table")
    args = parser.parse_args()
    torch.set_num_threads(bench_threads())  # the job's measured steps use every core, so the harness does too
    loaded = shared_cache().get("smollm2-135m-instruct")
    here = availability("cpu")
    left_out = () if args.with_opt_in else opt_in("cpu")
    keys = (
        [s.key for s in SPECS if here[s.key] is None and s.key not in left_out]
        if args.variants == "all"
        else args.variants.split(",")
    )
    for key, reason in here.items():
        if reason:
            print(f"not here: {key}: {reason}")
    if args.variants == "all" and left_out:
        print(f"opt-in on the CPU, left out (--with-opt-in runs them): {', '.join(left_out)}")
    config = BenchConfig(variants=tuple(keys), ppl_tokens=args.ppl_tokens, runs=args.runs, new_tokens=args.new_tokens)
    started = time.perf_counter()
    job = shared_runner().submit(
        "quantization-bench", run_job, loaded.model, loaded.tokenizer, config, "smollm2", "cpu", describe(loaded)
    )
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
    print(f"baseline: {report.baseline.text}")
    print(headline(report, *int8_speedups(report.rows)))
    ours, bare = harness(loaded, args.new_tokens, args.harness_repeats)
    print(f"harness: ours {ours:.2f} tok/s, model.generate {bare:.2f} tok/s")
    real = real_valued_table(args.runs) if not args.no_real else None
    print(json.dumps(last_line(report, table_s, ours / bare, real)))


if __name__ == "__main__":
    main()
