"""Inference: the page's measurements on SmolLM2-135M (fp32, dequantized from its Q4_1 GGUF), in one process.

1. KV cache: the formula (layers x 2 x KV heads x head dim x bytes x tokens) against the bytes a real
   DynamicCache holds after a 256-token prompt (`kv_formula_error`, relative).
2. Cache variants on the shipped long text: full attention, a rolling window, attention sinks + window
   (StreamingLLM) perplexities; the int4 quantized KV cache's perplexity change over the float cache.
3. Decode against the memory-bandwidth bound: this machine's copy bandwidth and the fp32 weights read per
   token give the bound; each decode path's tokens/s (interleaved rounds, medians) over it. The app's own
   token loop (generate_stream, greedy) is timed with the hand-written pass (after) and transformers' (before),
   interleaved: `decode_bound_share` = after tokens/s over the bound, `fast_decode_speedup` = after / before,
   with the tokens checked identical.
4. Speculative decoding: prompt lookup over the shipped summarisation-style prompts (`lookup_speedup`:
   median over prompts of plain greedy time / lookup time, tokens identical), and the draft stand-in
   (SmolLM2's first layers) on one prompt (`spec_accept_rate`, `spec_speedup`).
5. Batching: the decode step measured at batch 1..8, static vs continuous batching simulated over those
   costs on 60 requests (`continuous_throughput_ratio` at 8 requests/s).

Usage: .venv/bin/python bench/inference.py [--threads 2]
Last line: {"kv_formula_error", "lookup_speedup", "spec_accept_rate", "spec_speedup", "sinks_ppl",
            "window_ppl", "kvq_ppl_delta", "decode_bound_share", "fast_decode_speedup", ...}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import torch

from backends import inference as inf
from backends.models.cache import shared_cache

PROMPT_TOKENS = 64  # a prose prompt the model continues for the full 64 tokens (no early end-of-sequence)


def timed(rows, name, fn, *args, **kwargs):
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    rows.append((name, time.perf_counter() - started))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = shared_cache().get("smollm2-135m-instruct")
    seconds, out = [], {}

    out["kv_formula_error"] = timed(seconds, "kv formula", inf.kv_formula_error, loaded)

    ppl = timed(seconds, "window / sinks", inf.window_sinks_ppl, loaded)
    # past the window (tokens 256..): where the three differ at all
    out["full_ppl"], out["window_ppl"] = ppl["full_past_window"], ppl["window_past_window"]
    out["sinks_ppl"] = ppl["sinks_past_window"]
    kvq = timed(seconds, "int4 KV cache", inf.quantized_cache_ppl, loaded, bits=4)
    out["kvq_ppl_delta"] = kvq["delta"]
    out["kvq_fp_ppl"], out["kvq_q_ppl"] = kvq["fp_ppl"], kvq["q_ppl"]

    bound = timed(seconds, "roofline", inf.roofline, loaded.model)
    prompt = inf.prompt_of(loaded, PROMPT_TOKENS)
    paths = timed(seconds, "decode paths", inf.decode_paths, loaded, prompt, 64, 5, bound.decode_bound)
    out["decode_bound_tokens_per_s"] = bound.decode_bound
    out["bandwidth_gb_s"] = bound.bandwidth / 1e9
    out["decode_paths_identical"] = all(r["same_tokens"] for r in paths)
    loop = timed(seconds, "app loop before/after", inf.app_loop_speedup, loaded, prompt, 64, 5)
    out["decode_bound_share"] = loop["after_tokens_per_s"] / bound.decode_bound
    out["fast_decode_speedup"] = loop["speedup"]
    out["fast_decode_identical"] = loop["same_tokens"]

    look = timed(seconds, "prompt lookup", inf.lookup_speedup, loaded)
    out["lookup_speedup"] = look["speedup"]
    out["lookup_identical"] = look["identical"]
    spec = timed(seconds, "draft speculative", inf.spec_run, loaded, inf.lookup_prompts()[0]["text"], "draft")
    out["spec_accept_rate"], out["spec_speedup"] = spec["accept_rate"], spec["speedup"]
    out["spec_identical"] = spec["identical"]

    costs = timed(seconds, "step costs", inf.measure_step_costs, loaded)
    requests = inf.make_requests(60, 8.0, (16, 128), (8, 160), seed=0)
    sims = {p: inf.simulate(requests, costs, p, 8) for p in ("static", "continuous")}
    out["continuous_throughput_ratio"] = sims["continuous"].throughput / sims["static"].throughput

    print(f"\nSmolLM2-135M fp32 (dequantized Q4_1), {args.threads} threads\n")
    print(f"{'decode path':<28}{'tokens/s':>10}{'ms/token':>10}{'of bound':>10}{'same tokens':>13}")
    for r in paths:
        print(
            f"{r['path']:<28}{r['tokens_per_s']:>10.1f}{r['ms_per_token']:>10.1f}"
            f"{r['bound_share']:>10.2f}{'yes' if r['same_tokens'] else 'NO':>13}"
        )
    print(f"{'bandwidth bound':<28}{bound.decode_bound:>10.1f}   ({bound.bandwidth / 1e9:.1f} GB/s copy)")
    print(
        f"\napp token loop: {loop['before_tokens_per_s']:.1f} -> {loop['after_tokens_per_s']:.1f} tokens/s "
        f"(x{loop['speedup']:.2f}, {loop['tokens']} tokens, same tokens: {loop['same_tokens']})"
    )
    print(f"\n{'batching (60 requests, 8/s, batch 8)':<40}{'tokens/s':>10}{'p50 s':>8}{'p95 s':>8}")
    for p, r in sims.items():
        print(f"{p:<40}{r.throughput:>10.1f}{r.percentile('latency', 0.5):>8.2f}{r.percentile('latency', 0.95):>8.2f}")
    print(f"\n{'perplexity on the long text past token 256':<44}{'ppl':>6}")
    for k in ("full", "window", "sinks"):
        print(f"{k:<44}{ppl[k + '_past_window']:>6.2f}")
    print(f"{'float KV cache':<40}{kvq['fp_ppl']:>10.2f}")
    print(f"{'int4 KV cache':<40}{kvq['q_ppl']:>10.2f}")
    print(f"\n{'speculative':<40}{'speed-up':>10}{'accept':>10}")
    print(f"{'prompt lookup (median over prompts)':<40}{look['speedup']:>10.2f}{'':>10}")
    print(f"{'draft (first layers)':<40}{spec['speedup']:>10.2f}{spec['accept_rate']:>10.2f}")
    print(f"\nkv formula error: {out['kv_formula_error']:.2e}")
    print("\nseconds: " + ", ".join(f"{n} {s:.0f}" for n, s in seconds))
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
