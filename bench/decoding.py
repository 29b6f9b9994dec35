"""Decoding: tokens/s through our streaming backend vs. plain `model.generate`, and KV cache on/off.

Same model (SmolLM2-135M-Instruct, offline), prompt and config on both sides: greedy, and
top-p 0.9 sampling with one seed (both sides draw the same tokens, see the tests; the bench checks
it on every run and stops with an error, no JSON line, when they differ). Runs are
interleaved (ours, plain, ours, plain, ...) so that background load hits both alike; each
figure is the median of --runs paired ratios after one warm-up (with their quartiles). Ours also
takes a turn in the app's compute scheduler for every token, as in the app. Ours includes everything the page
gets per token: raw and filtered probabilities, the top-5 alternatives with their text and
the streamed text piece.

Usage: .venv/bin/python bench/decoding.py [--runs 15] [--tokens 96]
Last line: {"greedy_ratio": ..., "top_p_ratio": ..., "kv_cache_speedup": ..., "greedy_ratio_iqr": [q1, q3],
"top_p_ratio_iqr": [q1, q3]}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
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

from backends.decoding import PRESETS, encode_prompt, generate_stream
from backends.decoding.metrics import kv_cache_comparison
from backends.models.cache import shared_cache

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."


def ours(loaded, ids, config) -> tuple[float, list[int]]:
    started = time.perf_counter()
    tokens = [step.token_id for step in generate_stream(loaded, ids, config)]
    return time.perf_counter() - started, tokens


def plain(loaded, ids, config) -> tuple[float, list[int]]:
    x = torch.tensor([ids])
    started = time.perf_counter()
    if config.strategy == "sample":
        torch.manual_seed(config.seed)
    with torch.inference_mode():
        out = loaded.model.generate(x, attention_mask=torch.ones_like(x), **config.to_generate_kwargs())
    return time.perf_counter() - started, out[0, len(ids) :].tolist()


def compare(loaded, ids, config, runs) -> dict:
    """Paired runs: each pair times ours and plain back to back, the order alternating between pairs
    so drift and background load hit both sides alike; the figure is the median of the pairs' ratios,
    with their spread (quartiles), which is what varies run to run on a shared 2-core machine."""
    ours(loaded, ids, config), plain(loaded, ids, config)  # warm-up
    rates = {"ours": [], "plain": []}
    pair_ratios = []
    same = True
    for i in range(runs):
        results, pair = {}, {}
        order = (("ours", ours), ("plain", plain)) if i % 2 == 0 else (("plain", plain), ("ours", ours))
        for name, fn in order:
            seconds, tokens = fn(loaded, ids, config)
            pair[name] = len(tokens) / seconds
            rates[name].append(pair[name])
            results[name] = tokens
        pair_ratios.append(pair["ours"] / pair["plain"])
        same = same and results["ours"] == results["plain"]
    q1, _median, q3 = statistics.quantiles(pair_ratios, n=4) if len(pair_ratios) > 1 else [pair_ratios[0]] * 3
    return {
        "ours": statistics.median(rates["ours"]),
        "plain": statistics.median(rates["plain"]),
        "ratio": statistics.median(pair_ratios),
        "q1": q1,
        "q3": q3,
        "min": min(pair_ratios),
        "max": max(pair_ratios),
        "tokens": len(results["ours"]),
        "same": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=96)
    args = parser.parse_args()
    loaded = shared_cache().get("smollm2-135m-instruct")
    ids = encode_prompt(loaded, PROMPT, chat=True)
    configs = {
        "greedy": dataclasses.replace(PRESETS["greedy"], max_new_tokens=args.tokens),
        "top-p 0.9": dataclasses.replace(PRESETS["nucleus top-p 0.9"], max_new_tokens=args.tokens, seed=1),
    }
    rows = {name: compare(loaded, ids, config, args.runs) for name, config in configs.items()}
    kv_cache_comparison(loaded, ids, 4)  # warm-up
    kv = [kv_cache_comparison(loaded, ids, args.tokens) for _ in range(max(1, args.runs // 2))]
    kv_speedup = statistics.median(r.speedup for r in kv)

    print(
        f"SmolLM2-135M-Instruct, {len(ids)}-token prompt, {torch.get_num_threads()} threads, "
        f"median of {args.runs} interleaved runs"
    )
    print(
        f"{'config':<12}{'tokens':>8}{'ours tok/s':>12}{'plain tok/s':>13}{'ratio':>8}{'IQR':>15}{'min-max':>15}"
        "  same tokens"
    )
    for name, r in rows.items():
        print(
            f"{name:<12}{r['tokens']:>8}{r['ours']:>12.1f}{r['plain']:>13.1f}{r['ratio']:>8.3f}"
            f"{r['q1']:>8.3f}-{r['q3']:.3f}{r['min']:>8.3f}-{r['max']:.3f}  {r['same']}"
        )
    with_ms = statistics.median(r.with_cache_s_per_token for r in kv) * 1000
    without_ms = statistics.median(r.without_cache_s_per_token for r in kv) * 1000
    print(
        f"KV cache, {args.tokens} greedy tokens: {with_ms:.1f} ms/token with, {without_ms:.1f} ms/token without, "
        f"speedup {kv_speedup:.2f}x, same tokens {all(r.same_tokens for r in kv)}"
    )
    differ = [name for name, r in rows.items() if not r["same"]]
    if not all(r.same_tokens for r in kv):
        differ.append("KV cache on/off")
    if differ:  # a speed ratio over different work means nothing: the bench fails instead of reporting it
        raise SystemExit(
            f"not the same tokens on both sides ({', '.join(differ)}): the ratios above compare different work"
        )
    print(
        json.dumps(
            {
                "greedy_ratio": round(rows["greedy"]["ratio"], 3),
                "top_p_ratio": round(rows["top-p 0.9"]["ratio"], 3),
                "kv_cache_speedup": round(kv_speedup, 2),
                "greedy_ratio_iqr": [round(rows["greedy"]["q1"], 3), round(rows["greedy"]["q3"], 3)],
                "top_p_ratio_iqr": [round(rows["top-p 0.9"]["q1"], 3), round(rows["top-p 0.9"]["q3"], 3)],
            }
        )
    )


if __name__ == "__main__":
    main()
